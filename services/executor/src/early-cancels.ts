import { taskRequestRef } from '@tandem/contracts';
import {
  enqueueOutbox,
  matchingEarlyCancels,
  pruneEarlyCancels,
  takeEarlyCancel,
  taskOutcomeRef,
  taskRunOf,
  transaction,
} from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import type { ExecutorDeps } from './deps.js';
import { cancelRequestMessage, endTaskInTx } from './outcomes.js';

type Deps = Pick<ExecutorDeps, 'db' | 'prefix' | 'onTaskFinished'>;

/**
 * Ends `cancelled` every stored task that an unexpired early cancel names (only `taskId` when given),
 * before anything of it ran, and asks for its cancellation by task id so the planner stops planning and
 * the approval service its requests; then forgets expired early cancels. Replica-safe: the early cancel
 * is deleted in the transaction that ends the task, and ending a task is a conditional update.
 */
export async function applyEarlyCancels(
  deps: Deps,
  log: Log,
  options: { taskId?: string } = {},
): Promise<number> {
  const only = options.taskId ?? null;
  const matches = await matchingEarlyCancels(deps.db, { taskId: only, limit: 100 });
  let cancelled = 0;
  for (const match of matches) {
    const ended = await transaction(deps.db, async (tx) => {
      const kept = await takeEarlyCancel(tx, match.id);
      if (kept === null) return null;
      const task = await taskOutcomeRef(tx, match.taskId);
      if (task === null) return null;
      const run = await taskRunOf(tx, task.id);
      const done = await endTaskInTx(
        tx,
        deps,
        { id: task.id, kind: task.kind, agentId: task.agentId },
        taskRequestRef(task),
        { status: 'cancelled', reason: kept.reason, requestedBy: kept.requestedBy },
        { planId: run?.planId ?? null },
      );
      if (!done) return null;
      await enqueueOutbox(
        tx,
        cancelRequestMessage(deps, {
          taskId: task.id,
          source: '/tandem/executor/early-cancels',
          time: new Date(),
          ...(kept.reason === null ? {} : { reason: kept.reason }),
          ...(kept.requestedBy === null ? {} : { requestedBy: kept.requestedBy }),
        }),
      );
      return task;
    });
    if (ended) {
      cancelled += 1;
      deps.onTaskFinished?.('cancelled', ended.kind);
      log.info({ taskId: ended.id }, 'task cancelled by a cancel request that arrived before it');
    }
  }
  if (only === null) await pruneEarlyCancels(deps.db);
  return cancelled;
}
