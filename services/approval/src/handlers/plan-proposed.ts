import { randomUUID } from 'node:crypto';
import { ApprovalsDecided, PlanProposed, type Envelope, type EventData } from '@tandem/contracts';
import {
  enqueueOutbox,
  insertApprovalRequests,
  lockApprovalTask,
  supersedeApprovalRequests,
  taskApprovalState,
  type OutboxMessage,
  type Tx,
} from '@tandem/db';
import { outboxEvent } from '@tandem/service-kit';
import { writeAudit } from '../audit.js';
import { define, type ApprovalConsumerDeps } from '../consumers.js';
import { TASK_CANCELLED_ACTION } from '../domain/cancel.js';
import { planStanding } from '../domain/plan-versions.js';
import type { RiskAssessment } from '../domain/risk.js';
import {
  agentVerified,
  planActionClasses,
  planRequests,
  type StepOutcome,
} from '../domain/step-judgement.js';
import { requestedMessage } from '../messages.js';
import { queueApproverWebhooks } from '../notify.js';
import { readTaskContext, taskContextOf } from '../requests.js';
import { assessWithOpinion } from '../risk-opinion.js';
import { loadTrust } from '../trust-store.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const PLAN_PROPOSED_CONSUMER = 'approval-plan-proposed';

type PlanData = EventData<typeof PlanProposed>;

/** What the plan's transaction did. */
type PlanResult =
  | { skipped: 'task cancelled' }
  | { skipped: 'stale'; newerVersion: number }
  | { superseded: number; outcomes: StepOutcome[]; queued: number };

/**
 * `plan.proposed`: one approval request per step. Auto-approved steps are decided at once, the others
 * (and every `ask_human` question) wait in Postgres for a human. A newer plan version first marks the
 * still-pending requests of the versions it replaces `superseded`; a plan older than one already held
 * for its task, or one arriving after the task was cancelled, creates nothing. Requests, audit rows and
 * events commit together, under the task's lock; a redelivered plan changes nothing. Staged: a model's
 * risk opinion (when configured) is asked before the transaction, never inside it.
 */
export const planProposed = define({
  durable: PLAN_PROPOSED_CONSUMER,
  event: PlanProposed,
  async run(envelope, context) {
    const { deps } = context;
    const plan = envelope.data;
    const log = context.log.child({ taskId: plan.taskId, planId: plan.planId, version: plan.version });
    let risks: ReadonlyMap<string, RiskAssessment> = new Map();
    if (deps.opinion) {
      // The opinion is a model call: skipped for a plan already handled.
      if (await context.processed()) {
        log.info('plan already handled');
        return;
      }
      risks = await assessWithOpinion(deps.opinion, {
        taskId: plan.taskId,
        plan: plan.steps,
        task: { kind: plan.kind, ...(await readTaskContext(deps.db, plan.taskId)) },
      });
    }
    const committed = await context.commit((tx) => judgePlan(tx, deps, envelope, risks));
    if (committed.duplicate) {
      log.info('plan already handled');
      return;
    }
    const result = committed.value;
    if ('skipped' in result) {
      if (result.skipped === 'stale') {
        log.warn(
          { newerVersion: result.newerVersion },
          'plan is older than one already held for its task; no requests created',
        );
      } else {
        log.info('plan arrived after its task was cancelled; no requests created');
      }
      return;
    }
    if (result.queued > 0) deps.kickDeliveries();
    for (const outcome of result.outcomes) deps.onOutcome?.(outcome);
    log.info(
      {
        requests: result.outcomes.filter((outcome) => outcome !== 'superseded').length,
        human: result.outcomes.filter((outcome) => outcome === 'pending').length,
        superseded: result.superseded,
      },
      'approval requests created',
    );
  },
});

/** The plan's transaction: load the task's state, decide (domain/), write requests, audits and events. */
async function judgePlan(
  tx: Tx,
  deps: ApprovalConsumerDeps,
  envelope: Envelope<PlanData>,
  risks: ReadonlyMap<string, RiskAssessment>,
): Promise<PlanResult> {
  const plan = envelope.data;
  await lockApprovalTask(tx, plan.taskId);
  const known = await taskApprovalState(tx, {
    taskId: plan.taskId,
    stepIds: plan.steps.map((step) => step.stepId),
    service: 'approval',
    cancelledAction: TASK_CANCELLED_ACTION,
  });
  if (known.cancelled) return { skipped: 'task cancelled' };
  const standing = planStanding(plan, known.plans);
  if (standing.stale) return { skipped: 'stale', newerVersion: standing.newerVersion };
  const superseded = await supersedePending(tx, plan, standing.supersede);
  const loaded = deps.policy();
  const task = taskContextOf(known.task, plan.taskId);
  const trust =
    plan.agentId !== null && agentVerified(plan.agentId, task, loaded.policy)
      ? await loadTrust(tx, plan.agentId, planActionClasses(plan))
      : new Map();
  const decided = planRequests({
    plan,
    task,
    existingSteps: known.existingSteps,
    trust,
    policy: loaded,
    autoApprove: deps.autoApprove,
    risks,
    now: new Date(),
    newId: randomUUID,
  });
  await insertApprovalRequests(tx, decided.requests);
  await writeAudit(tx, decided.audits);
  const messages: OutboxMessage[] = [];
  let queued = 0;
  for (const pending of decided.pending) {
    messages.push(requestedMessage(deps.prefix, pending.row));
    queued += await queueApproverWebhooks(
      tx,
      deps.endpoints(),
      'approval.requested',
      pending.row,
      { arguments: pending.arguments },
      'requested:0',
    );
  }
  if (decided.automatic.length > 0) {
    messages.unshift(
      outboxEvent(
        { prefix: deps.prefix, publisher: 'approval' },
        ApprovalsDecided,
        { taskId: plan.taskId, planId: plan.planId, decisions: decided.automatic },
        { correlationId: plan.taskId, causationId: envelope.id },
      ).message,
    );
  }
  await enqueueOutbox(tx, messages);
  return {
    superseded,
    outcomes: [...Array.from({ length: superseded }, (): StepOutcome => 'superseded'), ...decided.outcomes],
    queued,
  };
}

/** Marks the pending requests of the replaced plans `superseded`, with an audit row each; returns how many. */
async function supersedePending(tx: Tx, plan: PlanData, planIds: string[]): Promise<number> {
  if (planIds.length === 0) return 0;
  // A human edit's editedBy is the editing token (the planner never takes it from a request body).
  const decidedBy = plan.editedBy ?? 'planner';
  const reason = `superseded by plan version ${plan.version}${plan.origin ? ` (${plan.origin})` : ''}`;
  // Conditional like a human decision: a decision that committed first keeps its request.
  const updated = await supersedeApprovalRequests(tx, {
    taskId: plan.taskId,
    planIds,
    decidedBy,
    reason,
    at: new Date(),
  });
  await writeAudit(
    tx,
    updated.map((row) => ({
      action: 'approval.superseded',
      subject: { type: 'step', id: row.stepId ?? row.id },
      actor: decidedBy,
      reason,
      data: {
        approvalId: row.id,
        taskId: plan.taskId,
        planId: row.planId,
        supersededBy: plan.planId,
        version: plan.version,
        ...(plan.editedByLabel ? { editedByLabel: plan.editedByLabel } : {}),
      },
    })),
  );
  return updated.length;
}
