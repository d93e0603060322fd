import { ErrorCodes, type ApprovalsDecided, type Envelope, type EventData } from '@tandem/contracts';
import { markProcessed } from '@tandem/db';
import { toJsonInput, type Log } from '@tandem/service-kit';
import { advanceTask, type AdvanceDeps } from '../advance.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const EXECUTOR_APPROVALS_CONSUMER = 'executor-approval-batch-decided';

/**
 * Records the decisions policy made for a plan's steps (one message per plan) in one transaction, then
 * moves the task forward: every approved step that can run now runs in one pass. Decisions may arrive
 * before the plan, so missing step rows are created without overwriting an earlier decision.
 */
export async function handleApprovalsDecided(
  deps: AdvanceDeps,
  envelope: Envelope<EventData<typeof ApprovalsDecided>>,
  context: { messageId: string; deliveryCount: number; log: Log },
): Promise<void> {
  const batch = envelope.data;
  await deps.db.prisma.$transaction(async (tx) => {
    if (!(await markProcessed(tx, EXECUTOR_APPROVALS_CONSUMER, context.messageId))) return;
    const approved = batch.decisions.filter((decision) => decision.decision === 'approved');
    const rejected = batch.decisions.filter((decision) => decision.decision === 'rejected');
    await tx.stepRun.createMany({
      data: batch.decisions.map((decision) => ({
        stepId: decision.stepId,
        taskId: batch.taskId,
        status: 'waiting',
      })),
      skipDuplicates: true,
    });
    if (approved.length > 0) {
      await tx.stepRun.updateMany({
        where: { stepId: { in: approved.map((decision) => decision.stepId) }, status: 'waiting' },
        data: { status: 'approved', approval: 'auto' },
      });
    }
    for (const decision of rejected) {
      await tx.stepRun.updateMany({
        where: { stepId: decision.stepId, status: 'waiting' },
        data: {
          status: 'rejected',
          approval: 'auto',
          error: toJsonInput({
            code: ErrorCodes.APPROVAL_REJECTED,
            message: decision.reason ?? 'rejected by policy',
            retryable: false,
          }),
        },
      });
    }
  });
  await advanceTask(deps, batch.taskId, context.log, {
    lastDelivery: context.deliveryCount >= deps.maxDeliver,
  });
}
