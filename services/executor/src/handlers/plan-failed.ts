import type { Envelope, EventData, PlanFailed } from '@tandem/contracts';
import { markProcessedPrisma } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { failTaskInTx, type AdvanceDeps } from '../advance.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const EXECUTOR_PLAN_FAILED_CONSUMER = 'executor-plan-failed';

/** Turns a planning failure into the task's `task.failed` outcome (the executor owns outcomes). */
export async function handlePlanFailed(
  deps: AdvanceDeps,
  envelope: Envelope<EventData<typeof PlanFailed>>,
  context: { messageId: string; log: Log },
): Promise<void> {
  const data = envelope.data;
  let failed = false;
  await deps.db.prisma.$transaction(async (tx) => {
    if (!(await markProcessedPrisma(tx, EXECUTOR_PLAN_FAILED_CONSUMER, context.messageId))) return;
    failed = await failTaskInTx(
      tx,
      deps,
      { id: data.taskId, kind: data.kind, agentId: data.agentId },
      data.request,
      data.error,
      {},
    );
  });
  if (failed) {
    deps.kick();
    deps.onTaskFinished?.('failed', data.kind);
    context.log.warn({ taskId: data.taskId, code: data.error.code }, 'task failed in planning');
  }
}
