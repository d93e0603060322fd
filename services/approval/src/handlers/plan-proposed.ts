import { randomUUID } from 'node:crypto';
import {
  ApprovalRequested,
  ApprovalsDecided,
  type Envelope,
  type EventData,
  type PlanProposed,
  type RiskClass,
} from '@tandem/contracts';
import { enqueueOutbox, markProcessed, type Db, type OutboxMessage, type Prisma, type Tx } from '@tandem/db';
import { outboxEvent, type Log } from '@tandem/service-kit';
import { initialDecision } from '../domain/decide.js';
import { planStanding } from '../domain/plan-versions.js';
import { isTaskCancelled, lockTask, storedPlans } from '../store.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const PLAN_PROPOSED_CONSUMER = 'approval-plan-proposed';

/** What became of the requests of one step (for metrics). */
export type StepOutcome = 'auto-approved' | 'auto-rejected' | 'pending' | 'superseded';

type PlanData = EventData<typeof PlanProposed>;

/**
 * Creates one approval request per step: auto-approved steps are decided at once, the others (and
 * every `ask_human` question) wait in Postgres for a human. A newer plan version first marks the
 * still-pending requests of the versions it replaces `superseded`; a plan older than one already held
 * for its task, or one arriving after the task was cancelled, creates nothing. Requests, audit rows and
 * events commit together; a redelivered plan changes nothing.
 */
export async function handlePlanProposed(
  deps: {
    db: Db;
    prefix: string;
    autoApprove: ReadonlySet<RiskClass>;
    kick: () => void;
    onOutcome?: (outcome: StepOutcome) => void;
  },
  envelope: Envelope<PlanData>,
  context: { messageId: string; log: Log },
): Promise<void> {
  const plan = envelope.data;
  const log = context.log.child({ taskId: plan.taskId, planId: plan.planId, version: plan.version });
  const outcomes: StepOutcome[] = [];
  let messages = 0;
  const result = await deps.db.prisma.$transaction(async (tx) => {
    await lockTask(tx, plan.taskId);
    if (!(await markProcessed(tx, PLAN_PROPOSED_CONSUMER, context.messageId))) {
      return { skipped: 'duplicate' as const };
    }
    if (await isTaskCancelled(tx, plan.taskId)) return { skipped: 'task cancelled' as const };
    const standing = planStanding(plan, await storedPlans(tx, plan.taskId));
    if (standing.stale) return { skipped: 'stale' as const, newerVersion: standing.newerVersion };
    const superseded = await supersedePending(tx, plan, standing.supersede);
    for (let index = 0; index < superseded; index++) outcomes.push('superseded');
    const created = await createRequests(tx, deps, envelope);
    outcomes.push(...created.outcomes);
    if (created.messages.length > 0) await enqueueOutbox(tx, created.messages);
    messages = created.messages.length;
    return { superseded, created: created.outcomes.length };
  });
  if (messages > 0) deps.kick();
  for (const outcome of outcomes) deps.onOutcome?.(outcome);
  if ('skipped' in result) {
    if (result.skipped === 'stale') {
      log.warn(
        { newerVersion: result.newerVersion },
        'plan is older than one already held for its task; no requests created',
      );
    } else if (result.skipped === 'task cancelled') {
      log.info('plan arrived after its task was cancelled; no requests created');
    } else {
      log.info('plan already handled');
    }
    return;
  }
  log.info(
    {
      requests: result.created,
      human: outcomes.filter((outcome) => outcome === 'pending').length,
      superseded: result.superseded,
    },
    'approval requests created',
  );
}

/** Marks the pending requests of the replaced plans `superseded`, with an audit row each; returns how many. */
async function supersedePending(tx: Tx, plan: PlanData, planIds: string[]): Promise<number> {
  if (planIds.length === 0) return 0;
  const pending = await tx.approvalRequest.findMany({
    where: { taskId: plan.taskId, planId: { in: planIds }, status: 'pending' },
    orderBy: { createdAt: 'asc' },
  });
  const decidedBy = plan.editedBy ?? 'planner';
  const reason = `superseded by plan version ${plan.version}${plan.origin ? ` (${plan.origin})` : ''}`;
  const now = new Date();
  let count = 0;
  for (const request of pending) {
    // Conditional like a human decision: a decision that committed first keeps its request.
    const updated = await tx.approvalRequest.updateMany({
      where: { id: request.id, status: 'pending' },
      data: { status: 'superseded', decidedAt: now, decidedBy, reason },
    });
    if (updated.count === 0) continue;
    await tx.auditLog.create({
      data: {
        id: randomUUID(),
        service: 'approval',
        action: 'approval.superseded',
        subjectType: 'step',
        subjectId: request.stepId ?? request.id,
        actor: decidedBy,
        reason,
        data: {
          approvalId: request.id,
          taskId: request.taskId,
          planId: request.planId,
          supersededBy: plan.planId,
          version: plan.version,
        },
      },
    });
    count += 1;
  }
  return count;
}

/**
 * Creates the requests and their audit rows with one statement each; decisions made by policy go out as
 * one `approval.batch-decided` for the plan, requests for humans as one `approval.requested` each.
 */
async function createRequests(
  tx: Tx,
  deps: { prefix: string; autoApprove: ReadonlySet<RiskClass> },
  envelope: Envelope<PlanData>,
): Promise<{ outcomes: StepOutcome[]; messages: OutboxMessage[] }> {
  const plan = envelope.data;
  const existing = await tx.approvalRequest.findMany({
    where: { stepId: { in: plan.steps.map((step) => step.stepId) } },
    select: { stepId: true },
  });
  const seen = new Set(existing.map((row) => row.stepId));
  const messages: OutboxMessage[] = [];
  const outcomes: StepOutcome[] = [];
  const requests: Prisma.ApprovalRequestCreateManyInput[] = [];
  const audits: Prisma.AuditLogCreateManyInput[] = [];
  const automatic: EventData<typeof ApprovalsDecided>['decisions'] = [];
  const now = new Date();
  const meta = { correlationId: plan.taskId, causationId: envelope.id };
  const options = { prefix: deps.prefix, publisher: 'approval' };
  for (const step of plan.steps) {
    if (seen.has(step.stepId)) continue;
    const decision = initialDecision(step, deps.autoApprove);
    const approvalId = randomUUID();
    const question = decision.kind === 'question' && decision.mode === 'human' ? decision : null;
    requests.push({
      id: approvalId,
      taskId: plan.taskId,
      planId: plan.planId,
      stepId: step.stepId,
      agentId: plan.agentId,
      tool: step.tool,
      riskClass: step.riskClass,
      kind: decision.kind,
      question: question?.question ?? null,
      mode: decision.mode,
      status: decision.status,
      reason: decision.reason,
      ...(decision.mode === 'auto' ? { decidedAt: now, decidedBy: decision.decidedBy } : {}),
    });
    audits.push({
      id: randomUUID(),
      service: 'approval',
      action: decision.mode === 'auto' ? `approval.auto-${decision.status}` : 'approval.requested',
      subjectType: 'step',
      subjectId: step.stepId,
      actor: decision.mode === 'auto' ? decision.decidedBy : null,
      reason: decision.reason,
      data: {
        approvalId,
        taskId: plan.taskId,
        planId: plan.planId,
        tool: step.tool,
        riskClass: step.riskClass,
        kind: decision.kind,
        ...(question ? { question: question.question, choices: question.choices } : {}),
      },
    });
    if (decision.mode === 'auto') {
      automatic.push({
        approvalId,
        stepId: step.stepId,
        decision: decision.status,
        decidedBy: decision.decidedBy,
        reason: decision.reason,
      });
      outcomes.push(decision.status === 'approved' ? 'auto-approved' : 'auto-rejected');
    } else {
      messages.push(
        outboxEvent(
          options,
          ApprovalRequested,
          {
            approvalId,
            taskId: plan.taskId,
            planId: plan.planId,
            stepId: step.stepId,
            tool: step.tool,
            riskClass: step.riskClass,
            kind: decision.kind,
            ...(question ? { question: question.question } : {}),
          },
          meta,
        ).message,
      );
      outcomes.push('pending');
    }
  }
  if (requests.length > 0) await tx.approvalRequest.createMany({ data: requests });
  if (audits.length > 0) await tx.auditLog.createMany({ data: audits });
  if (automatic.length > 0) {
    messages.unshift(
      outboxEvent(
        options,
        ApprovalsDecided,
        { taskId: plan.taskId, planId: plan.planId, decisions: automatic },
        meta,
      ).message,
    );
  }
  return { outcomes, messages };
}
