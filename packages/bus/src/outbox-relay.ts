import { randomUUID } from 'node:crypto';
import { ErrorCodes, type JsonValue } from '@tandem/contracts';
import {
  claimUnpublished,
  deadLetterOutboxRow,
  oldestUnpublishedAgeMs,
  markPublished,
  onOutboxCommitted,
  recordPublishFailure,
  releaseClaims,
  type Db,
  type OutboxClaim,
  type OutboxHandOver,
  type OutboxMessage,
} from '@tandem/db';
import type { Logger } from 'pino';
import type { Bus } from './bus.js';
import { permanentFailure } from './consumer.js';

/**
 * The header on a message the relay enqueued in place of an unpublishable row (its value: that row's
 * outbox id). A row carrying it is dead-lettered without asking the hook again, so a bad replacement
 * cannot loop. Wire name.
 */
export const REPLACES_HEADER = 'Tandem-Replaces';

/** An outbox row that can never be published, as the relay's `onUnpublishable` hook gets it. */
export interface UnpublishableOutboxRow {
  /** The outbox id (`Nats-Msg-Id`; also the DeadLetter's id). */
  id: string;
  publisher: string;
  subject: string;
  payload: JsonValue;
  headers: Record<string, string>;
  /** Why: the publish error's code (`BUS.PAYLOAD_TOO_LARGE`, `BUS.PUBLISH_REFUSED`, ...) and message. */
  error: { code: string; message: string };
}

/**
 * The owner's answer to an unpublishable row: messages (e.g. a typed failure event for the row's task)
 * enqueued in the same transaction as the row's dead letter. Return none when the row is not yours to
 * replace. A hook that throws leaves the row dead-lettered without replacements.
 */
export type UnpublishableHook = (
  row: UnpublishableOutboxRow,
) => readonly OutboxMessage[] | Promise<readonly OutboxMessage[]>;

/** Options of {@link createOutboxRelay}. */
export interface OutboxRelayOptions {
  db: Db;
  /** Only `publish` is used. */
  bus: Pick<Bus, 'publish'> & Partial<Pick<Bus, 'findPublished'>>;
  /** The service whose outbox rows this relay publishes. */
  publisher: string;
  /** Rows read per batch (default 100). */
  batchSize?: number;
  /** How often the relay looks for rows without being kicked (default 1000 ms). */
  pollIntervalMs?: number;
  /**
   * How long a claim on rows lasts (default 15 s): rows of a relay that died are taken over after it. A relay
   * starts publishing claimed rows only within the first third of the lease, so keep the lease above three
   * times the bus's publish timeout (5 s): a claim never runs out while its publish may still land.
   */
  claimLeaseMs?: number;
  /** See {@link UnpublishableHook}; can also be set later with {@link OutboxRelay.onUnpublishable}. */
  onUnpublishable?: UnpublishableHook;
  /** Called once per row dead-lettered as unpublishable (e.g. to count it in the dead-letter metric). */
  onDeadLetter?: (info: { consumer: string; code: string; subject: string; outboxId: string }) => void;
  log: Logger;
}

/** Publishes a service's outbox rows to JetStream, in order, with `Nats-Msg-Id` = outbox id, each row once. */
export interface OutboxRelay {
  /** This relay instance's claim holder name (`<publisher>:<uuid>`), as stored in `Outbox.claimedBy`. */
  readonly holder: string;
  /**
   * Starts polling (and publishes what is already waiting), and becomes the hand-over of the database
   * pool's transactions (`transaction` with `enqueueOutbox`): their rows of this publisher are inserted
   * claimed by this relay.
   */
  start(): void;
  /** Reads and publishes a batch now; concurrent kicks coalesce. */
  kick(): void;
  /** Publishes rows that just committed claimed by this relay (the hand-over), then marks them published. */
  offer(messages: readonly OutboxMessage[]): void;
  /** Sets the hook asked for replacements of a row that can never be published (see {@link UnpublishableHook}). */
  onUnpublishable(hook: UnpublishableHook): void;
  /** How long this publisher's oldest waiting row has waited (ms), null when none: for readiness. */
  oldestUnpublishedAgeMs(): Promise<number | null>;
  /** Stops polling and waits for the batch in flight. */
  stop(): Promise<void>;
}

type BatchOutcome = 'more' | 'drained' | 'failed';

/** Default lease of a relay's claim on outbox rows: 15 s. */
export const DEFAULT_CLAIM_LEASE_MS = 15_000;

/**
 * Creates the relay. Every row is claimed before it is published, so two relays of one publisher (two
 * replicas of a service) and the two paths of one relay never both publish it:
 * - rows of this process's transactions (`enqueueOutbox` in `transaction`) are inserted already claimed
 *   by this relay and handed to it right after COMMIT ({@link OutboxRelay.offer}); nobody else reads them
 *   while the claim holds;
 * - the poll claims the oldest unclaimed rows (written by another process, released after a failure, or left
 *   by a relay whose claim ran out) in one statement, then publishes them one by one, awaiting each PubAck,
 *   and marks them published (a durable commit).
 * A failed publish is recorded on its row, ends the batch and releases the claims of the rows not
 * published, so a later row never overtakes an earlier one; the next tick retries. A relay that dies
 * holding claims leaves its rows for `claimLeaseMs`; then any relay takes them over. Rows are only sent
 * within the first third of their lease (later ones are released and claimed again), so a publish still in
 * flight never overlaps another relay's. A crash between
 * publish and mark republishes a row, which JetStream drops as a duplicate of its msgId (2-minute window).
 *
 * A row that can never be published (a non-retryable publish error: over max_payload with no claim check,
 * a subject refused) is dead-lettered with its reason (`BUS.OUTBOX_UNPUBLISHABLE`, DeadLetter consumer
 * `outbox:<publisher>`) together with the hook's replacements, and later rows go on. Payloads over the
 * bus's claim-check threshold are published as claim checks (`claimCheck: true`).
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const batchSize = options.batchSize ?? 100;
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const leaseMs = options.claimLeaseMs ?? DEFAULT_CLAIM_LEASE_MS;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isFinite(pollIntervalMs) || pollIntervalMs < 1)
    throw new RangeError(`pollIntervalMs must be positive, got ${pollIntervalMs}`);
  if (!Number.isInteger(leaseMs) || leaseMs < 1_000)
    throw new RangeError(`claimLeaseMs must be an integer of at least 1000, got ${leaseMs}`);
  const holder = `${options.publisher}:${randomUUID()}`;
  const claim: OutboxClaim = { holder, leaseMs };
  const log = options.log.child({ component: 'outbox-relay', publisher: options.publisher });
  let hook = options.onUnpublishable;

  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let kickedWhileRunning = false;
  let offered: Promise<void> = Promise.resolve();
  let detach: (() => void) | undefined;

  let pendingMarks: string[] = [];
  let marking: Promise<void> | undefined;

  /** The highest stream sequence a PubAck gave per subject: a lower bound for later publishes on it. */
  const ackedSeq = new Map<string, number>();
  /**
   * Rows whose publish failed without a clear refusal (a lost PubAck: the message may be stored and may
   * have reached core-NATS subscribers), with the subject's lower bound when it was sent. Before such a
   * row is published again the relay asks the stream whether it holds it: a blind retry would reach plain
   * subscribers twice, which JetStream's duplicate window cannot prevent.
   */
  const uncertain = new Map<string, number>();
  const MAX_UNCERTAIN = 10_000;

  function acked(subject: string, seq: number): void {
    if (seq > (ackedSeq.get(subject) ?? 0)) ackedSeq.set(subject, seq);
  }

  function markUncertain(id: string, afterSeq: number): void {
    if (uncertain.size >= MAX_UNCERTAIN && !uncertain.has(id)) return;
    uncertain.set(id, afterSeq);
  }

  /** True when an earlier, uncertain publish of the row is stored (it must not be sent again). */
  async function storedAlready(row: { id: string; subject: string }): Promise<boolean> {
    const afterSeq = uncertain.get(row.id);
    if (afterSeq === undefined || options.bus.findPublished === undefined) return false;
    const found = await options.bus.findPublished(row.subject, row.id, afterSeq);
    if (found === true) {
      uncertain.delete(row.id);
      log.info(
        { outboxId: row.id, subject: row.subject },
        'an uncertain publish was stored; not sending it again',
      );
      return true;
    }
    // false: not stored, send it; null: could not tell, send it (JetStream still drops a stored copy).
    return false;
  }

  /** Marks published rows, coalescing the ids of every hand-over that finished meanwhile into one update. */
  function markSoon(ids: readonly string[]): void {
    pendingMarks.push(...ids);
    if (marking !== undefined) return;
    marking = (async () => {
      while (pendingMarks.length > 0) {
        const batch = pendingMarks;
        pendingMarks = [];
        await markWithRetries(batch);
      }
    })().finally(() => {
      marking = undefined;
    });
  }

  /**
   * A mark that failed is tried again while the claim holds (Postgres restarting): an unmarked row is
   * published again once its claim runs out.
   */
  async function markWithRetries(ids: readonly string[]): Promise<void> {
    const deadline = Date.now() + leaseMs / 3;
    for (let attempt = 1; ; attempt++) {
      try {
        await markPublished(options.db, ids);
        return;
      } catch (error) {
        if (Date.now() + 100 * attempt > deadline) {
          log.warn(
            { err: error, rows: ids.length },
            'could not mark outbox rows published; they will be published again',
          );
          return;
        }
        await sleep(100 * attempt);
      }
    }
  }

  async function release(ids: readonly string[]): Promise<void> {
    try {
      await releaseClaims(options.db, holder, ids);
    } catch (error) {
      log.warn(
        { err: error, rows: ids.length },
        'could not release outbox claims; they run out after the lease',
      );
    }
  }

  /**
   * Dead-letters a row that can never be published, with the hook's replacements, in one transaction.
   * Throws when the database does (the row is then tried again later).
   */
  async function deadLetterRow(
    row: { id: string; subject: string; payload: JsonValue; headers: Record<string, string> },
    failure: { code: string; message: string },
  ): Promise<void> {
    let replacements: OutboxMessage[] = [];
    if (hook !== undefined && row.headers[REPLACES_HEADER] === undefined) {
      try {
        const made = await hook({ ...row, publisher: options.publisher, error: failure });
        replacements = made.map((message) => ({
          ...message,
          headers: { ...message.headers, [REPLACES_HEADER]: row.id },
        }));
      } catch (error) {
        log.error(
          { err: error, outboxId: row.id },
          'onUnpublishable failed; the row is dead-lettered without a replacement',
        );
      }
    }
    const recorded = await deadLetterOutboxRow(
      options.db,
      {
        id: row.id,
        consumer: `outbox:${options.publisher}`,
        code: ErrorCodes.BUS_OUTBOX_UNPUBLISHABLE,
        reason: `${failure.code}: ${failure.message}`,
      },
      replacements,
    );
    if (!recorded) return;
    try {
      options.onDeadLetter?.({
        consumer: `outbox:${options.publisher}`,
        code: ErrorCodes.BUS_OUTBOX_UNPUBLISHABLE,
        subject: row.subject,
        outboxId: row.id,
      });
    } catch (error) {
      log.error({ err: error }, 'onDeadLetter listener threw');
    }
    log.error(
      {
        outboxId: row.id,
        subject: row.subject,
        code: ErrorCodes.BUS_OUTBOX_UNPUBLISHABLE,
        cause: failure.code,
        reason: failure.message,
        replacements: replacements.map((message) => message.id),
      },
      'outbox row can never be published; dead-lettered',
    );
    // Replacements were handed over (this relay is the pool's) or wait for the next batch.
    if (replacements.length > 0) kick();
  }

  async function publishOffered(messages: readonly OutboxMessage[], offeredAt: number): Promise<void> {
    if (Date.now() - offeredAt > leaseMs / 3) {
      // Waited behind slow hand-overs (NATS down) for a good part of the lease: claim them again instead
      // of publishing under a claim that may run out meanwhile.
      await release(messages.map((message) => message.id));
      kick();
      return;
    }
    // Sent in order on one connection and awaited together: one round trip for the batch.
    const lowerBounds = messages.map((message) => ackedSeq.get(message.subject) ?? 0);
    const results = await Promise.allSettled(
      messages.map((message) =>
        options.bus.publish(message.subject, message.payload, {
          msgId: message.id,
          headers: message.headers ?? {},
          claimCheck: true,
        }),
      ),
    );
    const published: string[] = [];
    const failed: string[] = [];
    for (const [index, result] of results.entries()) {
      const message = messages[index];
      if (!message) continue;
      if (result.status === 'fulfilled') {
        published.push(message.id);
        acked(message.subject, result.value.seq);
        continue;
      }
      const permanent = permanentFailure(result.reason);
      if (permanent !== null) {
        try {
          await deadLetterRow(
            {
              id: message.id,
              subject: message.subject,
              payload: toJsonValue(message.payload),
              headers: message.headers ?? {},
            },
            permanent,
          );
          continue;
        } catch (error) {
          log.warn({ err: error, outboxId: message.id }, 'could not dead-letter an unpublishable outbox row');
        }
      }
      failed.push(message.id);
      markUncertain(message.id, lowerBounds[index] ?? 0);
      log.warn(
        { err: result.reason, outboxId: message.id },
        'publishing a committed outbox row failed; the relay will claim it again',
      );
    }
    markSoon(published);
    if (failed.length > 0) {
      await release(failed);
      kick();
    }
  }

  function offer(messages: readonly OutboxMessage[]): void {
    // Stopped: the rows stay claimed until the lease runs out, then a relay (this one restarted, or
    // another replica's) takes them.
    if (!running) return;
    const mine = messages.filter((message) => message.publisher === options.publisher);
    if (mine.length === 0) return;
    const offeredAt = Date.now();
    offered = offered.then(() => publishOffered(mine, offeredAt));
  }

  const handOver: OutboxHandOver = {
    publisher: options.publisher,
    claim: () => (running ? claim : null),
    committed: offer,
  };

  async function runBatch(): Promise<BatchOutcome> {
    const rows = await claimUnpublished(options.db, options.publisher, claim, batchSize);
    if (rows.length === 0) return 'drained';
    // Publish only while the claim surely holds; what is left is released for the next batch.
    const stopAt = Date.now() + leaseMs / 3;
    const published: string[] = [];
    let handled = 0;
    let failed = false;
    for (const row of rows) {
      if (Date.now() >= stopAt) break;
      const lowerBound = ackedSeq.get(row.subject) ?? 0;
      try {
        if (await storedAlready(row)) {
          published.push(row.id);
          handled++;
          continue;
        }
        const result = await options.bus.publish(row.subject, row.payload, {
          msgId: row.id,
          headers: row.headers,
          claimCheck: true,
        });
        uncertain.delete(row.id);
        acked(row.subject, result.seq);
        published.push(row.id);
        handled++;
        continue;
      } catch (error) {
        const permanent = permanentFailure(error);
        if (permanent !== null) {
          try {
            await deadLetterRow(row, permanent);
            handled++;
            continue;
          } catch (deadLetterError) {
            log.warn(
              { err: deadLetterError, outboxId: row.id },
              'could not dead-letter an unpublishable outbox row; will retry',
            );
          }
        }
        failed = true;
        markUncertain(row.id, Math.min(lowerBound, uncertain.get(row.id) ?? lowerBound));
        log.warn(
          { err: error, outboxId: row.id, subject: row.subject, attempts: row.attempts + 1 },
          'outbox publish failed; will retry',
        );
        try {
          await recordPublishFailure(options.db, row.id, error);
        } catch (recordError) {
          log.error({ err: recordError, outboxId: row.id }, 'could not record an outbox publish failure');
        }
        break;
      }
    }
    const left = rows.slice(handled).map((row) => row.id);
    if (published.length > 0) await markWithRetries(published);
    if (left.length > 0) await release(left);
    if (failed) return 'failed';
    return rows.length === batchSize || left.length > 0 ? 'more' : 'drained';
  }

  async function drain(): Promise<void> {
    do {
      kickedWhileRunning = false;
      let outcome: BatchOutcome = 'more';
      while (running && outcome === 'more') {
        try {
          outcome = await runBatch();
        } catch (error) {
          log.error({ err: error }, 'outbox relay batch failed; will retry');
          outcome = 'failed';
        }
      }
      // After a failure wait for the next tick rather than spin on kicks.
      if (outcome === 'failed') return;
    } while (running && kickedWhileRunning);
  }

  function kick(): void {
    if (!running) return;
    if (current !== undefined) {
      kickedWhileRunning = true;
      return;
    }
    current = drain().finally(() => {
      current = undefined;
    });
  }

  return {
    holder,
    start() {
      if (running) return;
      running = true;
      detach = onOutboxCommitted(options.db, handOver);
      timer = setInterval(kick, pollIntervalMs);
      // The NATS connection keeps a service alive; the poll timer alone must not.
      timer.unref();
      kick();
    },
    kick,
    offer,
    onUnpublishable(next) {
      hook = next;
    },
    oldestUnpublishedAgeMs: () => oldestUnpublishedAgeMs(options.db, options.publisher),
    async stop() {
      running = false;
      detach?.();
      detach = undefined;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await current;
      await offered;
      await marking;
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A stored JSON input as the JSON value it is (for the hook). */
function toJsonValue(value: unknown): JsonValue {
  const parsed: JsonValue = JSON.parse(JSON.stringify(value ?? null));
  return parsed;
}
