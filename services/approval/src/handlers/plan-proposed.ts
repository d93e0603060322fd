import { randomUUID } from 'node:crypto';
import {
  ApprovalRequested,
  ApprovalsDecided,
  type Envelope,
  type EventData,
  type PlanProposed,
  type RiskClass,
} from '@tandem/contracts';
import {
  enqueueOutboxSql,
  insertRows,
  sqlTransaction,
  utcWallClock,
  type Db,
  type OutboxMessage,
  type Sql,
  type SqlColumn,
} from '@tandem/db';
import { outboxEvent, type Log } from '@tandem/service-kit';
import { initialDecision } from '../domain/decide.js';
import { planStanding } from '../domain/plan-versions.js';
import { lockTaskAndMarkProcessed, taskApprovalState } from '../store.js';

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
  const result = await sqlTransaction(deps.db, async (sql) => {
    if (!(await lockTaskAndMarkProcessed(sql, plan.taskId, PLAN_PROPOSED_CONSUMER, context.messageId))) {
      return { skipped: 'duplicate' as const };
    }
    const known = await taskApprovalState(
      sql,
      plan.taskId,
      plan.steps.map((step) => step.stepId),
    );
    if (known.cancelled) return { skipped: 'task cancelled' as const };
    const standing = planStanding(plan, known.plans);
    if (standing.stale) return { skipped: 'stale' as const, newerVersion: standing.newerVersion };
    const superseded = await supersedePending(sql, plan, standing.supersede);
    for (let index = 0; index < superseded; index++) outcomes.push('superseded');
    const created = await createRequests(sql, deps, envelope, known.existingSteps);
    outcomes.push(...created.outcomes);
    if (created.messages.length > 0) await enqueueOutboxSql(sql, created.messages);
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

const REQUEST_COLUMNS: SqlColumn[] = [
  { name: 'id', cast: 'uuid' },
  { name: 'taskId', cast: 'uuid' },
  { name: 'planId', cast: 'uuid' },
  { name: 'stepId', cast: 'uuid' },
  { name: 'agentId' },
  { name: 'tool' },
  { name: 'riskClass' },
  { name: 'kind' },
  { name: 'question' },
  { name: 'mode' },
  { name: 'status' },
  { name: 'reason' },
  { name: 'decidedAt', cast: 'timestamp' },
  { name: 'decidedBy' },
  { name: 'createdAt', cast: 'timestamp' },
  { name: 'updatedAt', cast: 'timestamp' },
];

const AUDIT_COLUMNS: SqlColumn[] = [
  { name: 'id', cast: 'uuid' },
  { name: 'service' },
  { name: 'action' },
  { name: 'subjectType' },
  { name: 'subjectId' },
  { name: 'actor' },
  { name: 'reason' },
  { name: 'data', cast: 'jsonb' },
  { name: 'createdAt', cast: 'timestamp' },
];

/** An audit row's values in {@link AUDIT_COLUMNS} order (UTC wall-clock `createdAt`, like Prisma writes). */
function auditRow(
  action: string,
  subject: { type: string; id: string },
  actor: string | null,
  reason: string | null,
  data: Record<string, unknown>,
): unknown[] {
  return [
    randomUUID(),
    'approval',
    action,
    subject.type,
    subject.id,
    actor,
    reason,
    JSON.stringify(data),
    utcWallClock(),
  ];
}

/** Marks the pending requests of the replaced plans `superseded`, with an audit row each; returns how many. */
async function supersedePending(sql: Sql, plan: PlanData, planIds: string[]): Promise<number> {
  if (planIds.length === 0) return 0;
  const decidedBy = plan.editedBy ?? 'planner';
  const reason = `superseded by plan version ${plan.version}${plan.origin ? ` (${plan.origin})` : ''}`;
  // Conditional like a human decision: a decision that committed first keeps its request.
  const updated = await sql.query(
    `UPDATE "ApprovalRequest"
        SET "status" = 'superseded', "decidedAt" = $3::timestamp, "decidedBy" = $4, "reason" = $5, "updatedAt" = $3::timestamp
      WHERE "taskId" = $1::uuid AND "planId" = ANY($2::uuid[]) AND "status" = 'pending'
      RETURNING "id"::text AS "id", "stepId"::text AS "stepId", "planId"::text AS "planId"`,
    [plan.taskId, planIds, utcWallClock(), decidedBy, reason],
  );
  const audits = updated.rows.map((row) =>
    auditRow(
      'approval.superseded',
      { type: 'step', id: String(row['stepId'] ?? row['id']) },
      decidedBy,
      reason,
      {
        approvalId: row['id'],
        taskId: plan.taskId,
        planId: row['planId'],
        supersededBy: plan.planId,
        version: plan.version,
      },
    ),
  );
  if (audits.length > 0) await insertRows(sql, 'AuditLog', AUDIT_COLUMNS, audits);
  return audits.length;
}

/**
 * Creates the requests and their audit rows with one statement each; decisions made by policy go out as
 * one `approval.batch-decided` for the plan, requests for humans as one `approval.requested` each.
 */
async function createRequests(
  sql: Sql,
  deps: { prefix: string; autoApprove: ReadonlySet<RiskClass> },
  envelope: Envelope<PlanData>,
  existingSteps: ReadonlySet<string>,
): Promise<{ outcomes: StepOutcome[]; messages: OutboxMessage[] }> {
  const plan = envelope.data;
  const seen = existingSteps;
  const messages: OutboxMessage[] = [];
  const outcomes: StepOutcome[] = [];
  const requests: unknown[][] = [];
  const audits: unknown[][] = [];
  const automatic: EventData<typeof ApprovalsDecided>['decisions'] = [];
  const now = utcWallClock();
  const meta = { correlationId: plan.taskId, causationId: envelope.id };
  const options = { prefix: deps.prefix, publisher: 'approval' };
  for (const step of plan.steps) {
    if (seen.has(step.stepId)) continue;
    const decision = initialDecision(step, deps.autoApprove);
    const approvalId = randomUUID();
    const question = decision.kind === 'question' && decision.mode === 'human' ? decision : null;
    requests.push([
      approvalId,
      plan.taskId,
      plan.planId,
      step.stepId,
      plan.agentId,
      step.tool,
      step.riskClass,
      decision.kind,
      question?.question ?? null,
      decision.mode,
      decision.status,
      decision.reason,
      decision.mode === 'auto' ? now : null,
      decision.mode === 'auto' ? decision.decidedBy : null,
      now,
      now,
    ]);
    audits.push(
      auditRow(
        decision.mode === 'auto' ? `approval.auto-${decision.status}` : 'approval.requested',
        { type: 'step', id: step.stepId },
        decision.mode === 'auto' ? decision.decidedBy : null,
        decision.reason,
        {
          approvalId,
          taskId: plan.taskId,
          planId: plan.planId,
          tool: step.tool,
          riskClass: step.riskClass,
          kind: decision.kind,
          ...(question ? { question: question.question, choices: question.choices } : {}),
        },
      ),
    );
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
  if (requests.length > 0) await insertRows(sql, 'ApprovalRequest', REQUEST_COLUMNS, requests);
  if (audits.length > 0) await insertRows(sql, 'AuditLog', AUDIT_COLUMNS, audits);
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
