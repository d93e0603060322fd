/** A sandbox that can be started ahead of demand and used for exactly one job. */
export interface PoolableBox {
  /** True once the box is up and waiting for its job; false when it died or failed to start. */
  readonly ready: Promise<boolean>;
  /** Still waiting for a job (not dead, not taken). */
  isIdle(): boolean;
  /** Kills and removes a box that will not be used; never rejects. */
  discard(): Promise<void>;
}

/** Warm boxes of one kind (one language). */
export interface WarmPool<B extends PoolableBox> {
  /**
   * A box for one job: a warm one when there is one (the oldest first), else one started now. The caller
   * calls `refill` once its job is done: a replacement started at once would compete with the job for the
   * CPU (a box's start costs far more than a trivial job). The box may have failed to start
   * (`ready` false): a box from the pool that died while it waited is replaced by a fresh one first, and a
   * fresh one that fails is returned as it is, so the caller reports what went wrong.
   */
  acquire(): Promise<B>;
  /**
   * Starts boxes until `size` are warm or starting, and lets `refill` keep it so from then on
   * (a service calls this once at start-up; a one-shot command never does, and starts no spare boxes).
   */
  fill(): void;
  /** Starts boxes until `size` are waiting again (after `fill` was called once; else nothing). */
  refill(): void;
  /** Discards every waiting box and starts no more. */
  close(): Promise<void>;
}

/**
 * A pool of pre-started sandboxes. Each box serves exactly one job and is then destroyed by its user, so
 * no state passes between jobs; the pool only moves the start-up cost (spawn, namespaces, interpreter
 * start) ahead of the request. With `size` 0 every job starts its own box on demand.
 */
export function createWarmPool<B extends PoolableBox>(options: {
  size: number;
  start: () => B;
  /** Called with boxes the pool drops (dead while waiting, or at close). */
  onDiscard?: (box: B) => void;
}): WarmPool<B> {
  const boxes: B[] = [];
  let closed = false;
  let active = false;

  const discard = (box: B): void => {
    options.onDiscard?.(box);
    void box.discard();
  };

  const refill = (): void => {
    while (active && !closed && boxes.length < options.size) boxes.push(options.start());
  };

  return {
    async acquire() {
      // Prefer a box that is ready now; else the oldest starting one, which is closest to ready.
      const readyIndex = boxes.findIndex((box) => box.isIdle());
      const index = readyIndex >= 0 ? readyIndex : boxes.length > 0 ? 0 : -1;
      if (index >= 0) {
        const [box] = boxes.splice(index, 1);
        if (box !== undefined) {
          if ((await box.ready) && box.isIdle()) return box;
          // Died while it waited (killed from outside, out of memory, ...): not the job's fault.
          discard(box);
        }
      }
      const fresh = options.start();
      await fresh.ready;
      return fresh;
    },
    fill() {
      active = true;
      refill();
    },
    refill,
    async close() {
      closed = true;
      const dropped = boxes.splice(0, boxes.length);
      for (const box of dropped) options.onDiscard?.(box);
      await Promise.all(dropped.map((box) => box.discard()));
    },
  };
}
