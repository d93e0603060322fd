import { randomUUID } from 'node:crypto';
import { JsonValue, TaskAccepted, createEnvelope, taskRequestRef } from '@tandem/contracts';
import { UTC_NOW as NOW, poolSql } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { handleTaskAccepted, loadPlanningTask, type PlanningDeps } from './handlers/task-accepted.js';

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
 * conditional update of the row; the task is then planned as if its task.accepted came again, rebuilt
 * from the stored task. The plan is stored at most once (the status moves `planning` -> `planned` once),
 * and the original message, when it comes back, finds the task planned.
 */
export function createPlanningTakeovers(options: {
  deps: PlanningDeps;
  log: Log;
  leaseMs: number;
  concurrency: number;
  /** Messages of the planning consumer not yet delivered to any planner. */
  backlog: () => Promise<number>;
}): PlanningTakeovers {
  const { deps, log, leaseMs } = options;
  const inFlight = new Set<Promise<void>>();

  async function takeOver(taskId: string): Promise<void> {
    const task = await loadPlanningTask(deps.db, taskId);
    if (!task) return;
    const input = JsonValue.safeParse(task.input ?? undefined);
    const envelope = createEnvelope(
      TaskAccepted,
      {
        taskId: task.id,
        request: taskRequestRef(task),
        goal: task.goal,
        ...(input.success && task.input !== null ? { input: input.data } : {}),
        kind: task.kind,
        agentId: task.agentId,
      },
      { correlationId: task.id, id: randomUUID() },
    );
    const messageLog = log.child({ taskId, takeover: true });
    messageLog.warn('planning lease ran out (its planner stopped); taking the task over');
    await handleTaskAccepted(deps, envelope, { messageId: envelope.id, deliveryCount: 1, log: messageLog });
  }

  return {
    async sweep() {
      const room = options.concurrency - inFlight.size;
      if (room <= 0) return 0;
      const withAccepted = (await options.backlog()) === 0;
      const claimed = await poolSql(deps.db).query(
        `UPDATE "Task" SET "updatedAt" = ${NOW}
          WHERE "id" IN (SELECT "id" FROM "Task"
                          WHERE ("status" = 'planning' OR ($3::boolean AND "status" = 'accepted'))
                            AND "updatedAt" < ${NOW} - $1::int * interval '1 millisecond'
                          ORDER BY "updatedAt" LIMIT $2 FOR UPDATE SKIP LOCKED)
            AND "updatedAt" < ${NOW} - $1::int * interval '1 millisecond'
          RETURNING "id"::text AS "id"`,
        [leaseMs, room, withAccepted],
      );
      for (const row of claimed.rows) {
        const taskId = row['id'];
        if (typeof taskId !== 'string') continue;
        const work = takeOver(taskId)
          .catch((error: unknown) =>
            // The lease runs out again and the next sweep tries again (or the message comes back).
            log.warn({ err: error, taskId }, 'taking over stale planning failed'),
          )
          .finally(() => inFlight.delete(work));
        inFlight.add(work);
      }
      return claimed.rows.length;
    },
    async drain() {
      await Promise.all(inFlight);
    },
  };
}
