import { taskRequestRef } from '@tandem/contracts';
import { enqueueOutbox, taskOutcomeRef, taskRunOf, tasksPastDeadline, transaction } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import type { ExecutorDeps } from './deps.js';
import { deadlineError } from './domain/advance.js';
import { cancelRequestMessage, failTaskInTx } from './outcomes.js';

/**
 * Fails every task whose deadline passed and that has not ended (planning, waiting for a human, running a
 * sandbox job) with TASK.DEADLINE_EXCEEDED, and asks for its cancellation so a running sandbox job is
 * killed and planning stops. Safe to run from several replicas: ending a task is a conditional update.
 */
export async function sweepDeadlines(
  deps: Pick<ExecutorDeps, 'db' | 'prefix' | 'onTaskFinished'>,
  log: Log,
  now: Date = new Date(),
): Promise<number> {
  const due = await tasksPastDeadline(deps.db, now, 100);
  let ended = 0;
  for (const id of due) {
    const task = await taskOutcomeRef(deps.db, id);
    if (task?.deadline == null) continue;
    const deadline = task.deadline;
    const failed = await transaction(deps.db, async (tx) => {
      const run = await taskRunOf(tx, id);
      const done = await failTaskInTx(
        tx,
        deps,
        { id: task.id, kind: task.kind, agentId: task.agentId },
        taskRequestRef(task),
        deadlineError(deadline),
        { planId: run?.planId ?? null },
      );
      if (!done) return false;
      await enqueueOutbox(
        tx,
        cancelRequestMessage(deps, {
          taskId: id,
          source: '/tandem/executor/deadlines',
          time: now,
          reason: 'deadline exceeded',
          requestedBy: 'tandem:deadline',
        }),
      );
      return true;
    });
    if (failed) {
      ended += 1;
      deps.onTaskFinished?.('failed', task.kind);
      log.warn({ taskId: id }, 'task deadline passed');
    }
  }
  return ended;
}
