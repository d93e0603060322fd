import { ApprovalsDecided, ErrorCodes, TandemError } from '@tandem/contracts';
import { applyPolicyDecisions, policyDecisionsOf } from '@tandem/db';
import { advanceTask } from '../advance.js';
import { define } from '../consumers.js';
import { stepRunFromPolicy } from '../domain/decision.js';

/**
 * `approval.batch-decided`: records the decisions policy made for a plan's steps (one message per plan)
 * in one transaction, then moves the task forward: every approved step that can run now runs in one
 * pass. Decisions may arrive before the plan, so missing step rows are created without overwriting an
 * earlier decision.
 *
 * What is recorded comes from the approval service's request rows (decided by policy: mode `auto`,
 * approved or rejected), not from the event: a step the event names without such a row is left as it
 * is, and an event no row backs at all is dead-lettered as `APPROVAL.UNVERIFIED`.
 */
export const approvalBatchDecided = define({
  // Wire name: renaming it creates a new durable consumer.
  durable: 'executor-approval-batch-decided',
  event: ApprovalsDecided,
  async handle(tx, envelope, context) {
    const batch = envelope.data;
    const stepIds = batch.decisions.map((decision) => decision.stepId);
    const decisions = await policyDecisionsOf(tx, { taskId: batch.taskId, planId: batch.planId, stepIds });
    if (decisions.length === 0) {
      throw new TandemError(
        ErrorCodes.APPROVAL_UNVERIFIED,
        `no stored policy decision backs approval.batch-decided for plan ${batch.planId}`,
      );
    }
    await applyPolicyDecisions(tx, batch.taskId, decisions.map(stepRunFromPolicy));
    if (decisions.length < stepIds.length) {
      context.log.warn(
        { taskId: batch.taskId, named: stepIds.length, backed: decisions.length },
        'approval.batch-decided names steps without a stored policy decision; those are left as they are',
      );
    }
  },
  async after(_committed, envelope, context) {
    await advanceTask(context.deps, envelope.data.taskId, context.log, {
      lastDelivery: context.lastDelivery,
    });
  },
});
