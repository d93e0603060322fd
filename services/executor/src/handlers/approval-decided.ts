import type { ApprovalDecided, Envelope, EventData } from '@tandem/contracts';
import { ErrorCodes, TandemError } from '@tandem/contracts';
import { markProcessedPrisma } from '@tandem/db';
import { toJsonInput, type Log } from '@tandem/service-kit';
import { advanceTask, type AdvanceDeps } from '../advance.js';
import { stepRunFromDecision } from '../domain/decision.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const EXECUTOR_APPROVAL_CONSUMER = 'executor-approval-decided';

/**
 * Records a step's approval, rejection or answer, then moves the task forward. The event only says where
 * to look: what is recorded is what the approval service's request row in Postgres says (status, edited
 * arguments, answer, reason). An event that no decided row backs is dead-lettered as
 * `APPROVAL.UNVERIFIED` and changes nothing.
 */
export async function handleApprovalDecided(
  deps: AdvanceDeps,
  envelope: Envelope<EventData<typeof ApprovalDecided>>,
  context: { messageId: string; deliveryCount: number; log: Log },
): Promise<void> {
  const event = envelope.data;
  await deps.db.prisma.$transaction(async (tx) => {
    if (!(await markProcessedPrisma(tx, EXECUTOR_APPROVAL_CONSUMER, context.messageId))) return;
    const request = await tx.approvalRequest.findFirst({
      where: { id: event.approvalId, stepId: event.stepId, taskId: event.taskId, planId: event.planId },
      select: { status: true, editedArguments: true, answer: true, reason: true, mode: true },
    });
    const decided = request ? stepRunFromDecision(request) : null;
    if (!decided) {
      throw new TandemError(
        ErrorCodes.APPROVAL_UNVERIFIED,
        `no decided approval request ${event.approvalId} for step ${event.stepId} backs this event` +
          (request ? ` (the request is ${request.status})` : ''),
      );
    }
    if (decided.status !== (event.decision === 'rejected' ? 'rejected' : 'approved')) {
      context.log.warn(
        { taskId: event.taskId, stepId: event.stepId, event: event.decision, stored: request?.status },
        'approval.decided disagrees with the stored decision; the stored one is applied',
      );
    }
    const data = {
      status: decided.status,
      approval: decided.mode,
      ...(decided.error ? { error: toJsonInput(decided.error) } : {}),
      ...(decided.answer === null
        ? {}
        : { result: toJsonInput({ value: { answer: decided.answer }, stdout: '' }) }),
      ...(decided.arguments ? { arguments: toJsonInput(decided.arguments) } : {}),
    };
    const existing = await tx.stepRun.findUnique({
      where: { stepId: event.stepId },
      select: { status: true },
    });
    if (!existing) {
      await tx.stepRun.create({ data: { stepId: event.stepId, taskId: event.taskId, ...data } });
    } else {
      await tx.stepRun.updateMany({ where: { stepId: event.stepId, status: 'waiting' }, data });
    }
  });
  await advanceTask(deps, event.taskId, context.log, {
    lastDelivery: context.deliveryCount >= deps.maxDeliver,
  });
}
