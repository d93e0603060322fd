import { PlanProposed, PublicSubjects, TaskCancelRequestedCloudEvent } from '@tandem/contracts';
import { Counter, type ServiceRuntime } from '@tandem/service-kit';
import type { ApprovalConfig } from './config.js';
import { handlePlanProposed, PLAN_PROPOSED_CONSUMER, type StepOutcome } from './handlers/plan-proposed.js';
import {
  cloudEventMessageId,
  handleTaskCancelRequested,
  TASK_CANCEL_REQUESTED_CONSUMER,
} from './handlers/task-cancel-requested.js';
import { registerApprovalRoutes } from './http/approvals.js';

const METRIC_LABELS: Record<StepOutcome, { mode: 'auto' | 'human'; outcome: string }> = {
  'auto-approved': { mode: 'auto', outcome: 'approved' },
  'auto-rejected': { mode: 'auto', outcome: 'rejected' },
  pending: { mode: 'human', outcome: 'pending' },
  superseded: { mode: 'human', outcome: 'superseded' },
};

/** The approval service: decides per step, keeps pending approvals in Postgres, takes human decisions over HTTP. */
export async function createApproval(deps: {
  runtime: ServiceRuntime;
  config: ApprovalConfig;
}): Promise<void> {
  const { runtime, config } = deps;
  const { db, kick } = runtime;
  const prefix = config.TANDEM_SUBJECT_PREFIX;
  const decisions = new Counter({
    name: 'tandem_approval_decisions_total',
    help: 'Approval decisions by mode and outcome',
    labelNames: ['mode', 'outcome'],
    registers: [runtime.metrics.registry],
  });
  const autoApprove = new Set(config.TANDEM_AUTO_APPROVE);
  registerApprovalRoutes(runtime.http, {
    db,
    prefix,
    kick,
    onDecision: (outcome) => decisions.inc({ mode: 'human', outcome }),
  });
  const plans = await runtime.consume({
    durable: PLAN_PROPOSED_CONSUMER,
    subject: PlanProposed.subjectSuffix,
    schema: PlanProposed.envelope,
    messageId: (envelope) => envelope.id,
    maxDeliver: config.TANDEM_MAX_DELIVER,
    concurrency: 4,
    handle: (envelope, context) =>
      handlePlanProposed(
        { db, prefix, autoApprove, kick, onOutcome: (outcome) => decisions.inc(METRIC_LABELS[outcome]) },
        envelope,
        context,
      ),
  });
  runtime.onStop(() => plans.stop());
  const cancels = await runtime.consume({
    durable: TASK_CANCEL_REQUESTED_CONSUMER,
    subject: PublicSubjects.taskCancelRequested,
    schema: TaskCancelRequestedCloudEvent,
    messageId: cloudEventMessageId,
    maxDeliver: config.TANDEM_MAX_DELIVER,
    concurrency: 4,
    handle: (event, context) =>
      handleTaskCancelRequested(
        { db, onCancelled: (count) => decisions.inc({ mode: 'human', outcome: 'cancelled' }, count) },
        event,
        context,
      ),
  });
  runtime.onStop(() => cancels.stop());
}
