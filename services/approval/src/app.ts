import { PlanProposed } from '@tandem/contracts';
import { Counter, type ServiceRuntime } from '@tandem/service-kit';
import type { ApprovalConfig } from './config.js';
import { handlePlanProposed, PLAN_PROPOSED_CONSUMER } from './handlers/plan-proposed.js';
import { registerApprovalRoutes } from './http/approvals.js';

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
  const consumer = await runtime.consume({
    durable: PLAN_PROPOSED_CONSUMER,
    subject: PlanProposed.subjectSuffix,
    schema: PlanProposed.envelope,
    messageId: (envelope) => envelope.id,
    maxDeliver: config.TANDEM_MAX_DELIVER,
    concurrency: 4,
    handle: (envelope, context) =>
      handlePlanProposed(
        {
          db,
          prefix,
          autoApprove,
          kick,
          onDecision: (mode) => decisions.inc({ mode, outcome: mode === 'auto' ? 'approved' : 'pending' }),
        },
        envelope,
        context,
      ),
  });
  runtime.onStop(() => consumer.stop());
}
