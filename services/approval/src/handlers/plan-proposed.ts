import { randomUUID } from 'node:crypto';
import {
  ApprovalsDecided,
  argumentsHash,
  needsResolvedApproval,
  type Envelope,
  type EventData,
  type PlanProposed,
  type RiskClass,
} from '@tandem/contracts';
import {
  enqueueOutboxSql,
  insertRows,
  poolSql,
  sqlTransaction,
  utcWallClock,
  type Db,
  type OutboxMessage,
  type Sql,
  type SqlColumn,
  toJsonText,
} from '@tandem/db';
import { outboxEvent, type Log } from '@tandem/service-kit';
import { writeAudit, type AuditEntry } from '../audit.js';
import type { LoadedPolicy } from '../decisions.js';
import { actionClassOf } from '../domain/action-class.js';
import { evaluateStep, type StepDecision } from '../domain/evaluate.js';
import type { RiskAssessment } from '../domain/risk.js';
import { planStanding } from '../domain/plan-versions.js';
import { ASK_HUMAN_TOOL, parseQuestion } from '../domain/question.js';
import { effectiveScore, NEW_TRUST } from '../domain/trust.js';
import { queueApproverWebhooks } from '../notify.js';
import { requestedMessage } from '../messages.js';
import type { RequestRow } from '../requests.js';
import { assessWithOpinion, type RiskOpinion } from '../risk-opinion.js';
import { lockTaskAndMarkProcessed, readTaskContext, taskApprovalState, type TaskContext } from '../store.js';
import { loadTrust } from '../trust-store.js';
import type { WebhookEndpoint } from '../webhooks/delivery.js';

/** What the plan handler needs. */
export interface PlanDeps {
  db: Db;
  prefix: string;
  /** Risk classes that may be approved without a human at all (TANDEM_AUTO_APPROVE). */
  autoApprove: ReadonlySet<RiskClass>;
  policy: () => LoadedPolicy;
  endpoints: () => readonly WebhookEndpoint[];
  kick: () => void;
  kickDeliveries: () => void;
  onOutcome?: (outcome: StepOutcome) => void;
  /** A model's second opinion on risk (TANDEM_APPROVAL_RISK_OPINION): may only raise a level. */
  opinion?: RiskOpinion;
}

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const PLAN_PROPOSED_CONSUMER = 'approval-plan-proposed';

/** What became of the requests of one step (for metrics). */
export type StepOutcome = 'auto-approved' | 'auto-rejected' | 'pending' | 'superseded' | 'awaiting-values';

type PlanData = EventData<typeof PlanProposed>;

/**
 * Creates one approval request per step: auto-approved steps are decided at once, the others (and
 * every `ask_human` question) wait in Postgres for a human. A newer plan version first marks the
 * still-pending requests of the versions it replaces `superseded`; a plan older than one already held
 * for its task, or one arriving after the task was cancelled, creates nothing. Requests, audit rows and
 * events commit together; a redelivered plan changes nothing.
 */
export async function handlePlanProposed(
  deps: PlanDeps,
  envelope: Envelope<PlanData>,
  context: { messageId: string; log: Log },
): Promise<void> {
  const plan = envelope.data;
  const log = context.log.child({ taskId: plan.taskId, planId: plan.planId, version: plan.version });
  const outcomes: StepOutcome[] = [];
  let messages = 0;
  let queued = 0;
  // The opinion is a model call: asked before the transaction, never inside it.
  const risks = deps.opinion
    ? await assessWithOpinion(deps.opinion, {
        taskId: plan.taskId,
        plan: plan.steps,
        task: { kind: plan.kind, ...(await readTaskContext(poolSql(deps.db), plan.taskId)) },
      })
    : new Map<string, RiskAssessment>();
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
    const created = await createRequests(sql, deps, envelope, known, risks);
    queued = created.queued;
    outcomes.push(...created.outcomes);
    if (created.messages.length > 0) await enqueueOutboxSql(sql, created.messages);
    messages = created.messages.length;
    return { superseded, created: created.outcomes.length };
  });
  if (messages > 0) deps.kick();
  if (queued > 0) deps.kickDeliveries();
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
async function supersedePending(sql: Sql, plan: PlanData, planIds: string[]): Promise<number> {
  if (planIds.length === 0) return 0;
  // A human edit's editedBy is the editing token (the planner never takes it from a request body).
  const decidedBy = plan.editedBy ?? 'planner';
  const reason = `superseded by plan version ${plan.version}${plan.origin ? ` (${plan.origin})` : ''}`;
  // Conditional like a human decision: a decision that committed first keeps its request.
  const updated = await sql.query(
    `UPDATE "ApprovalRequest"
        SET "status" = 'superseded', "decidedAt" = $3::timestamp, "decidedBy" = $4, "reason" = $5, "updatedAt" = $3::timestamp
      WHERE "taskId" = $1::uuid AND "planId" = ANY($2::uuid[]) AND "status" IN ('pending', 'awaiting-values')
      RETURNING "id"::text AS "id", "stepId"::text AS "stepId", "planId"::text AS "planId"`,
    [plan.taskId, planIds, utcWallClock(), decidedBy, reason],
  );
  await writeAudit(
    sql,
    updated.rows.map((row) => ({
      action: 'approval.superseded',
      subject: { type: 'step', id: String(row['stepId'] ?? row['id']) },
      actor: decidedBy,
      reason,
      data: {
        approvalId: row['id'],
        taskId: plan.taskId,
        planId: row['planId'],
        supersededBy: plan.planId,
        version: plan.version,
        ...(plan.editedByLabel ? { editedByLabel: plan.editedByLabel } : {}),
      },
    })),
  );
  return updated.rows.length;
}

const REQUEST_COLUMNS: SqlColumn[] = [
  { name: 'id', cast: 'uuid' },
  { name: 'taskId', cast: 'uuid' },
  { name: 'planId', cast: 'uuid' },
  { name: 'stepId', cast: 'uuid' },
  { name: 'agentId' },
  { name: 'tool' },
  { name: 'riskClass' },
  { name: 'riskLevel' },
  { name: 'riskReasons', cast: 'jsonb' },
  { name: 'trustAtDecision', cast: 'float8' },
  { name: 'actionClass' },
  { name: 'basis' },
  { name: 'kind' },
  { name: 'question' },
  { name: 'mode' },
  { name: 'status' },
  { name: 'reason' },
  { name: 'deadline', cast: 'timestamp' },
  { name: 'approverGroup' },
  { name: 'onExpiry' },
  { name: 'decidedAt', cast: 'timestamp' },
  { name: 'decidedBy' },
  { name: 'argumentsHash' },
  { name: 'createdAt', cast: 'timestamp' },
  { name: 'updatedAt', cast: 'timestamp' },
];

/**
 * Whether the task may use its agent's trust: submitted over HTTP with a token (the planner refuses a
 * token that may not act as the agent), or as a CloudEvent whose source the planner PROVED (its
 * `tandemsig` verified: `submittedBy` is `source:<source>`) and that the policy lists for the agent. A
 * source written into an unsigned event is a claim, never proof.
 */
export function agentVerified(
  agentId: string | null,
  task: { submittedBy: string | null; source: string | null },
  policy: LoadedPolicy['policy'],
): boolean {
  if (agentId === null) return false;
  if (task.submittedBy !== null && task.submittedBy.startsWith('token:')) return true;
  if (task.source === null || task.submittedBy !== `source:${task.source}`) return false;
  const sources = policy.agents?.[agentId]?.sources ?? [];
  return sources.includes(task.source);
}

/** The decision for one step, with questions and the TANDEM_AUTO_APPROVE bound applied. */
export type Decided = StepDecision & {
  kind: 'approval' | 'question';
  question: string | null;
  choices: string[] | null;
};

export function decideStep(
  decision: StepDecision,
  step: PlanData['steps'][number],
  autoApprove: ReadonlySet<RiskClass>,
): Decided {
  if (step.tool === ASK_HUMAN_TOOL && decision.outcome !== 'rejected') {
    const asked = parseQuestion(step.arguments);
    if (asked === null) {
      return {
        ...decision,
        outcome: 'rejected',
        basis: 'question:invalid',
        reason: `${ASK_HUMAN_TOOL} arguments hold no question (a non-empty string) or choices are not strings`,
        kind: 'question',
        question: null,
        choices: null,
      };
    }
    return {
      ...decision,
      outcome: 'needs-human',
      basis: 'question',
      kind: 'question',
      question: asked.question,
      choices: asked.choices,
    };
  }
  if (
    decision.outcome === 'auto-approved' &&
    !decision.basis.startsWith('rule:') &&
    !autoApprove.has(step.riskClass)
  ) {
    return {
      ...decision,
      outcome: 'needs-human',
      basis: 'config:auto-approve',
      reason: `risk class ${step.riskClass} is not in TANDEM_AUTO_APPROVE: a human decides`,
      kind: 'approval',
      question: null,
      choices: null,
    };
  }
  return {
    ...decision,
    kind: step.tool === ASK_HUMAN_TOOL ? 'question' : 'approval',
    question: null,
    choices: null,
  };
}

/**
 * Creates the requests and their audit rows with one statement each: risk from the rules, trust of the
 * agent (when the submitter may act as it), and the policy decide each step. Decisions made at once go
 * out as one `approval.batch-decided` for the plan; requests for humans as one `approval.requested` each
 * plus signed webhooks to the approver group's endpoints.
 */
async function createRequests(
  sql: Sql,
  deps: PlanDeps,
  envelope: Envelope<PlanData>,
  known: { existingSteps: ReadonlySet<string>; task: TaskContext },
  risks: ReadonlyMap<string, RiskAssessment>,
): Promise<{ outcomes: StepOutcome[]; messages: OutboxMessage[]; queued: number }> {
  const plan = envelope.data;
  const loaded = deps.policy();
  const { task, existingSteps } = known;
  const verified = agentVerified(plan.agentId, task, loaded.policy);
  const classes = plan.steps.map((step) => actionClassOf(step));
  const trust = verified && plan.agentId !== null ? await loadTrust(sql, plan.agentId, classes) : new Map();
  const messages: OutboxMessage[] = [];
  const outcomes: StepOutcome[] = [];
  const requests: unknown[][] = [];
  const audits: AuditEntry[] = [];
  const pendingRows: RequestRow[] = [];
  const automatic: EventData<typeof ApprovalsDecided>['decisions'] = [];
  const now = utcWallClock();
  const nowMs = Date.now();
  for (const step of plan.steps) {
    if (existingSteps.has(step.stepId)) continue;
    const actionClass = actionClassOf(step);
    const agentTrust = verified ? (trust.get(actionClass) ?? NEW_TRUST) : null;
    const decision = decideStep(
      evaluateStep({
        step,
        plan: plan.steps,
        task: { kind: plan.kind, goal: task.goal, input: task.input, agentId: plan.agentId },
        agentVerified: verified,
        trust: agentTrust,
        policy: loaded.policy,
        ...(risks.has(step.stepId) ? { risk: risks.get(step.stepId) } : {}),
      }),
      step,
      deps.autoApprove,
    );
    const approvalId = randomUUID();
    // A step built from earlier results is decided with its values, once they exist (a deny still
    // rejects it now): nothing is approved, or shown to a human, on the template alone.
    const deferred = decision.outcome !== 'rejected' && needsResolvedApproval(step.tool, step.arguments);
    const human = !deferred && decision.outcome === 'needs-human';
    const status = deferred
      ? 'awaiting-values'
      : decision.outcome === 'auto-approved'
        ? 'approved'
        : decision.outcome === 'rejected'
          ? 'rejected'
          : 'pending';
    const decidedBy = human || deferred ? null : `policy:${decision.basis}`;
    const deadline = human ? new Date(nowMs + decision.deadlineMs) : null;
    const trustScore = agentTrust === null ? null : effectiveScore(agentTrust);
    requests.push([
      approvalId,
      plan.taskId,
      plan.planId,
      step.stepId,
      plan.agentId,
      step.tool,
      step.riskClass,
      decision.risk.level,
      toJsonText(decision.risk.reasons),
      trustScore,
      actionClass,
      decision.basis,
      decision.kind,
      decision.question,
      human ? 'human' : 'auto',
      status,
      decision.reason,
      deadline === null ? null : utcWallClock(deadline),
      human ? decision.group : null,
      human ? decision.onExpiry : null,
      human || deferred ? null : now,
      decidedBy,
      argumentsHash(step.arguments),
      now,
      now,
    ]);
    audits.push({
      action: human
        ? 'approval.requested'
        : deferred
          ? 'approval.awaiting-values'
          : `approval.auto-${status}`,
      subject: { type: 'step', id: step.stepId },
      actor: decidedBy,
      reason: decision.reason,
      data: {
        approvalId,
        taskId: plan.taskId,
        planId: plan.planId,
        tool: step.tool,
        riskClass: step.riskClass,
        riskLevel: decision.risk.level,
        riskReasons: decision.risk.reasons,
        actionClass,
        basis: decision.basis,
        trust: trustScore,
        agentVerified: verified,
        policyVersion: loaded.version,
        policyHash: loaded.hash,
        kind: decision.kind,
        ...(decision.question === null ? {} : { question: decision.question, choices: decision.choices }),
        ...(deadline === null
          ? {}
          : { deadline: deadline.toISOString(), group: decision.group, onExpiry: decision.onExpiry }),
      },
    });
    if (deferred) {
      outcomes.push('awaiting-values');
      continue;
    }
    if (!human) {
      automatic.push({
        approvalId,
        stepId: step.stepId,
        decision: status === 'approved' ? 'approved' : 'rejected',
        decidedBy,
        reason: decision.reason,
      });
      outcomes.push(status === 'approved' ? 'auto-approved' : 'auto-rejected');
      continue;
    }
    pendingRows.push({
      id: approvalId,
      taskId: plan.taskId,
      planId: plan.planId,
      stepId: step.stepId,
      agentId: plan.agentId,
      tool: step.tool,
      riskClass: step.riskClass,
      riskLevel: decision.risk.level,
      riskReasons: decision.risk.reasons,
      trustAtDecision: trustScore,
      kind: decision.kind,
      question: decision.question,
      mode: 'human',
      status: 'pending',
      deadline,
      decidedBy: null,
      decidedAt: null,
      reason: decision.reason,
      editedArguments: null,
      answer: null,
      actionClass,
      basis: decision.basis,
      approverGroup: decision.group,
      escalationLevel: 0,
      onExpiry: decision.onExpiry,
      remindedAt: null,
      revertedAt: null,
      createdAt: new Date(nowMs),
    });
    outcomes.push('pending');
  }
  if (requests.length > 0) await insertRows(sql, 'ApprovalRequest', REQUEST_COLUMNS, requests);
  await writeAudit(sql, audits);
  let queued = 0;
  const steps = new Map(plan.steps.map((step) => [step.stepId, step]));
  for (const row of pendingRows) {
    messages.push(requestedMessage(deps.prefix, row));
    const step = row.stepId ? steps.get(row.stepId) : undefined;
    queued += await queueApproverWebhooks(
      sql,
      deps.endpoints(),
      'approval.requested',
      row,
      step ? { arguments: step.arguments } : null,
      'requested:0',
    );
  }
  if (automatic.length > 0) {
    messages.unshift(
      outboxEvent(
        { prefix: deps.prefix, publisher: 'approval' },
        ApprovalsDecided,
        { taskId: plan.taskId, planId: plan.planId, decisions: automatic },
        { correlationId: plan.taskId, causationId: envelope.id },
      ).message,
    );
  }
  return { outcomes, messages, queued };
}
