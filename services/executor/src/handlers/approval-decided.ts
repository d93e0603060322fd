import { ApprovalDecided, ErrorCodes, TandemError } from '@tandem/contracts';
import { applyHumanDecision, approvalDecisionOf } from '@tandem/db';
import { advanceTask } from '../advance.js';
import { define } from '../consumers.js';
import { stepRunFromDecision } from '../domain/decision.js';

/**
 * `approval.decided`: records a step's approval, rejection or answer, then moves the task forward. The
 * event only says where to look: what is recorded is what the approval service's request row in Postgres
 * says (status, edited arguments, answer, reason). An event that no decided row backs is dead-lettered as
 * `APPROVAL.UNVERIFIED` and changes nothing.
 */
export const approvalDecided = define({
  // Wire name: renaming it creates a new durable consumer.
  durable: 'executor-approval-decided',
  event: ApprovalDecided,
  async handle(tx, envelope, context) {
    const event = envelope.data;
    const request = await approvalDecisionOf(tx, {
      approvalId: event.approvalId,
      stepId: event.stepId,
      taskId: event.taskId,
      planId: event.planId,
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
    await applyHumanDecision(tx, {
      stepId: event.stepId,
      taskId: event.taskId,
      status: decided.status,
      approval: decided.mode,
      error: decided.error,
      ...(decided.answer === null ? {} : { result: { value: { answer: decided.answer }, stdout: '' } }),
      ...(decided.arguments === null ? {} : { arguments: decided.arguments }),
    });
  },
  async after(_committed, envelope, context) {
    await advanceTask(context.deps, envelope.data.taskId, context.log, {
      lastDelivery: context.lastDelivery,
    });
  },
});
