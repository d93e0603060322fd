import { randomUUID } from 'node:crypto';
import { handleMessage } from '@tandem/bus';
import { TaskAccepted, consumerNameFor, createEnvelope, subjectFor } from '@tandem/contracts';
import { claimStalePlanning, loadPlanningTask } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import type { PlannerDeps } from './consumers.js';
import { acceptedFromStoredTask, sweepPlan, takeoverRoom } from './domain/takeover.js';
import { taskAccepted } from './handlers/task-accepted.js';

/** A planner's takeovers of stale planning, bounded like its consumer's concurrency. */
export interface PlanningTakeovers {
  /** Claims and starts planning tasks whose lease ran out (at most `concurrency` at once). */
  sweep(): Promise<number>;
  /** Waits for the takeovers in flight. */
  drain(): Promise<void>;
}

/**
 * Takes over planning that a stopped planner left behind: a task `planning` whose lease (its row, which
 * a live planner renews) is older than `leaseMs`, and a task still `accepted` that long while the
 * planning consumer has nothing undelivered (its task.accepted was not merely queued). The claim is a
 * conditional update of the row; the task is then planned by the task.accepted consumer's own code, as
 * if its task.accepted came again (rebuilt from the stored task, under a new message id). The plan is
 * stored at most once (the status moves `planning` -> `planned` once), and the original message, when
 * it comes back, finds the task planned.
 */
export function createPlanningTakeovers(options: {
  deps: PlannerDeps;
  log: Log;
  leaseMs: number;
  concurrency: number;
  /** Deliveries a message gets (TANDEM_MAX_DELIVER): a take-over is the first. */
  maxDeliver: number;
  /** Messages of the planning consumer not yet delivered to any planner. */
  backlog: () => Promise<number>;
}): PlanningTakeovers {
  const { deps, log, leaseMs } = options;
  const inFlight = new Set<Promise<void>>();

  async function takeOver(taskId: string): Promise<void> {
    const task = await loadPlanningTask(deps.db, taskId);
    if (!task) return;
    const envelope = createEnvelope(TaskAccepted, acceptedFromStoredTask(task), {
      correlationId: task.id,
      id: randomUUID(),
    });
    const messageLog = log.child({ taskId, takeover: true });
    messageLog.warn('planning lease ran out (its planner stopped); taking the task over');
    await handleMessage(deps.db, taskAccepted, deps, options.maxDeliver, envelope, {
      messageId: envelope.id,
      consumer: consumerNameFor(deps.prefix, taskAccepted.durable),
      subject: subjectFor(deps.prefix, TaskAccepted.subjectSuffix),
      streamSeq: 0,
      deliveryCount: 1,
      headers: {},
      json: envelope,
      log: messageLog,
      working: () => undefined,
    });
  }

  return {
    async sweep() {
      const room = takeoverRoom(options.concurrency, inFlight.size);
      if (room <= 0) return 0;
      const plan = sweepPlan(room, await options.backlog());
      const claimed = await claimStalePlanning(deps.db, { leaseMs, ...plan });
      for (const taskId of claimed) {
        const work = takeOver(taskId)
          .catch((error: unknown) =>
            // The lease runs out again and the next sweep tries again (or the message comes back).
            log.warn({ err: error, taskId }, 'taking over stale planning failed'),
          )
          .finally(() => inFlight.delete(work));
        inFlight.add(work);
      }
      return claimed.length;
    },
    async drain() {
      await Promise.all(inFlight);
    },
  };
}
