import type { ApprovalDecided, Envelope, EventData } from '@tandem/contracts';
import { ErrorCodes } from '@tandem/contracts';
import { markProcessed } from '@tandem/db';
import { toJsonInput, type Log } from '@tandem/service-kit';
import { advanceTask, type AdvanceDeps } from '../advance.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const EXECUTOR_APPROVAL_CONSUMER = 'executor-approval-decided';

/** Records a step's approval, rejection or answer, then moves the task forward. */
export async function handleApprovalDecided(
  deps: AdvanceDeps,
  envelope: Envelope<EventData<typeof ApprovalDecided>>,
  context: { messageId: string; deliveryCount: number; log: Log },
): Promise<void> {
  const decision = envelope.data;
  // An answered question is an approved step whose result is the answer (the step completes with it).
  const status = decision.decision === 'rejected' ? 'rejected' : 'approved';
  const error =
    status === 'rejected'
      ? {
          code: decision.code ?? ErrorCodes.APPROVAL_REJECTED,
          message: decision.reason ?? 'rejected',
          retryable: false,
        }
      : undefined;
  // An approver's edit: the step runs with the edited (already revalidated) arguments.
  const edited =
    status === 'approved' && decision.arguments ? { arguments: toJsonInput(decision.arguments) } : {};
  const answer =
    decision.decision === 'answered'
      ? { result: toJsonInput({ value: { answer: decision.answer ?? '' }, stdout: '' }) }
      : {};
  await deps.db.prisma.$transaction(async (tx) => {
    if (!(await markProcessed(tx, EXECUTOR_APPROVAL_CONSUMER, context.messageId))) return;
    const existing = await tx.stepRun.findUnique({
      where: { stepId: decision.stepId },
      select: { status: true },
    });
    if (!existing) {
      await tx.stepRun.create({
        data: {
          stepId: decision.stepId,
          taskId: decision.taskId,
          status,
          approval: decision.mode,
          ...(error ? { error: toJsonInput(error) } : {}),
          ...answer,
          ...edited,
        },
      });
    } else {
      await tx.stepRun.updateMany({
        where: { stepId: decision.stepId, status: 'waiting' },
        data: {
          status,
          approval: decision.mode,
          ...(error ? { error: toJsonInput(error) } : {}),
          ...answer,
          ...edited,
        },
      });
    }
  });
  await advanceTask(deps, decision.taskId, context.log, {
    lastDelivery: context.deliveryCount >= deps.maxDeliver,
  });
}
