import { taskRequestRef, type TaskCancelRequestedCloudEvent } from '@tandem/contracts';
import { markProcessedPrisma } from '@tandem/db';
import { findCancelTarget, type Log } from '@tandem/service-kit';
import { endTaskInTx, type AdvanceDeps } from '../advance.js';
import { keepEarlyCancel } from '../early-cancels.js';

/** Consumer of `task.cancel-requested.v1` (wire name). */
export const EXECUTOR_CANCEL_CONSUMER = 'executor-task-cancel-requested';

/**
 * Cancels a task: steps not yet started never run (they are marked cancelled), and the task ends with its
 * own `task.cancelled` outcome, once. A running sandbox job is killed by the sandbox-runner, which
 * consumes the same request; its late result changes nothing. A request for a task that is not stored
 * yet is kept (`EarlyCancel`, for `earlyCancelTtlMs`) and applied when the task arrives.
 */
export async function handleTaskCancelRequested(
  deps: AdvanceDeps & { earlyCancelTtlMs: number },
  event: TaskCancelRequestedCloudEvent,
  context: { messageId: string; log: Log },
): Promise<void> {
  const taskId = await findCancelTarget(deps.db, event.data);
  const cancelled = await deps.db.prisma.$transaction(async (tx): Promise<{ kind: string } | null> => {
    if (!(await markProcessedPrisma(tx, EXECUTOR_CANCEL_CONSUMER, context.messageId))) return null;
    if (taskId === null) {
      // The task may not be stored yet (the cancel overtook its task.requested): keep the request.
      await keepEarlyCancel(tx, event.data, deps.earlyCancelTtlMs);
      return null;
    }
    const stored = await tx.task.findUnique({
      where: { id: taskId },
      select: { id: true, kind: true, agentId: true, source: true, externalId: true },
    });
    if (!stored) return null;
    const run = await tx.taskRun.findUnique({ where: { taskId }, select: { planId: true } });
    const plan =
      run?.planId == null
        ? null
        : await tx.plan.findUnique({
            where: { id: run.planId },
            select: { version: true, steps: { select: { tool: true }, orderBy: { index: 'asc' } } },
          });
    const ended = await endTaskInTx(
      tx,
      deps,
      { id: stored.id, kind: stored.kind, agentId: stored.agentId },
      taskRequestRef(stored),
      {
        status: 'cancelled',
        reason: event.data.reason ?? null,
        requestedBy: event.data.requestedBy ?? null,
      },
      {
        planId: run?.planId ?? null,
        ...(plan ? { planVersion: plan.version, tools: plan.steps.map((step) => step.tool) } : {}),
      },
    );
    return ended ? { kind: stored.kind } : null;
  });
  if (taskId === null) {
    context.log.info({ eventId: event.id }, 'cancel requested for a task not stored yet; kept for a while');
    return;
  }
  if (cancelled) {
    deps.kick();
    deps.onTaskFinished?.('cancelled', cancelled.kind);
    context.log.info({ taskId }, 'task cancelled');
  }
}
