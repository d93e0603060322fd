import {
  JsonValue,
  argumentsHash,
  referencedStepKeysDeep,
  resolveStepReferencesDeep,
  toolRegistry,
  validateToolArguments,
  type Envelope,
  type EventData,
  type PlannedStep,
  type StepFinished,
  type ToolCheckContext,
} from '@tandem/contracts';
import {
  UTC_NOW,
  enqueueOutboxSql,
  poolSql,
  sqlTransaction,
  type OutboxMessage,
  type Sql,
  toJsonText,
} from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { z } from 'zod';
import { writeAudit } from '../audit.js';
import { actionClassOf } from '../domain/action-class.js';
import { evaluateStep } from '../domain/evaluate.js';
import { assessRisk } from '../domain/risk.js';
import { effectiveScore, NEW_TRUST } from '../domain/trust.js';
import { raiseByValues } from '../domain/value-risk.js';
import { decidedMessage, requestedMessage } from '../messages.js';
import { queueApproverWebhooks } from '../notify.js';
import { REQUEST_SELECT, findRequest, requestRows, storedPlan, type RequestRow } from '../requests.js';
import { lockTaskAndMarkProcessed, readTaskContext, type TaskContext } from '../store.js';
import { loadTrust } from '../trust-store.js';
import { agentVerified, decideStep, type PlanDeps } from './plan-proposed.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const STEP_FINISHED_CONSUMER = 'approval-step-finished';

/** What judging a step with its values needs. */
export type ValuesDeps = Omit<PlanDeps, 'opinion'> & { checkContext: ToolCheckContext };

const StepResult = z.object({
  value: JsonValue.nullable().default(null),
  stdout: z.string().default(''),
});
const ArgumentsRecord = z.record(z.string(), JsonValue);

/**
 * A step completed: every request of the task that waits for values (a step whose arguments reference
 * earlier results) and whose references have all completed is now judged with the resolved arguments,
 * exactly like a model's step (validation, risk rules plus the values' own rules, the agent's trust, the
 * policy): approved by policy, rejected, or a request for a human who sees the values. The decision is
 * bound to the resolved arguments, which the executor resolves the same way from the same rows.
 * Idempotent: each request moves out of `awaiting-values` once, under the task's lock.
 */
export async function handleStepFinished(
  deps: ValuesDeps,
  envelope: Envelope<EventData<typeof StepFinished>>,
  context: { messageId: string; log: Log },
): Promise<void> {
  const event = envelope.data;
  if (event.status !== 'completed') return;
  // Most steps free nothing: one indexed read, no write.
  const waiting = await poolSql(deps.db).query(
    `SELECT 1 FROM "ApprovalRequest" WHERE "taskId" = $1::uuid AND "status" = 'awaiting-values' LIMIT 1`,
    [event.taskId],
  );
  if (waiting.rows.length === 0) return;
  const outcomes: Array<'auto-approved' | 'auto-rejected' | 'pending'> = [];
  let queued = 0;
  let published = 0;
  await sqlTransaction(deps.db, async (sql) => {
    if (!(await lockTaskAndMarkProcessed(sql, event.taskId, STEP_FINISHED_CONSUMER, context.messageId)))
      return;
    const requests = requestRows(
      (
        await sql.query(
          `SELECT ${REQUEST_SELECT} FROM "ApprovalRequest" r
            WHERE r."taskId" = $1::uuid AND r."status" = 'awaiting-values' ORDER BY r."createdAt"`,
          [event.taskId],
        )
      ).rows,
    );
    const messages: OutboxMessage[] = [];
    // What every request of the task is judged against, read once per plan version (and the task once).
    const plans = new Map<string, Promise<PlanFacts>>();
    const task = requests.length > 0 ? await readTaskContext(sql, event.taskId) : null;
    for (const request of requests) {
      if (task === null) break;
      let facts = plans.get(request.planId);
      if (facts === undefined) {
        facts = planFacts(sql, request.planId);
        plans.set(request.planId, facts);
      }
      const judged = await judgeWithValues(sql, deps, request, await facts, task);
      if (judged === null) continue;
      outcomes.push(judged.outcome);
      queued += judged.queued;
      messages.push(...judged.messages);
    }
    if (messages.length > 0) await enqueueOutboxSql(sql, messages);
    published = messages.length;
  });
  if (published > 0) deps.kick();
  if (queued > 0) deps.kickDeliveries();
  for (const outcome of outcomes) deps.onOutcome?.(outcome);
  if (outcomes.length > 0) {
    context.log.info({ taskId: event.taskId, judged: outcomes }, 'steps judged again with their values');
  }
}

async function completedResults(
  sql: Sql,
  planId: string,
): Promise<Map<string, { value: JsonValue; stdout: string }>> {
  const result = await sql.query(
    `SELECT s."stepKey", sr."result" FROM "PlanStep" s JOIN "StepRun" sr ON sr."stepId" = s."id"
      WHERE s."planId" = $1::uuid AND sr."status" = 'completed'`,
    [planId],
  );
  const results = new Map<string, { value: JsonValue; stdout: string }>();
  for (const row of result.rows) {
    // Like the executor: a completed step without a readable result resolves nothing.
    const parsed = StepResult.safeParse(row['result'] ?? null);
    if (parsed.success) results.set(String(row['stepKey']), parsed.data);
  }
  return results;
}

/** A stored plan with the results of its completed steps. */
interface PlanFacts {
  plan: Awaited<ReturnType<typeof storedPlan>>;
  results: Map<string, { value: JsonValue; stdout: string }>;
}

async function planFacts(sql: Sql, planId: string): Promise<PlanFacts> {
  return { plan: await storedPlan(sql, planId), results: await completedResults(sql, planId) };
}

async function judgeWithValues(
  sql: Sql,
  deps: ValuesDeps,
  request: RequestRow,
  { plan, results }: PlanFacts,
  task: TaskContext,
): Promise<{
  outcome: 'auto-approved' | 'auto-rejected' | 'pending';
  messages: OutboxMessage[];
  queued: number;
} | null> {
  if (request.stepId === null) return null;
  const step = plan.steps.find((candidate) => candidate.stepId === request.stepId);
  if (!step) return null;
  if (!referencedStepKeysDeep(step.arguments).every((key) => results.has(key))) return null;
  const parsed = ArgumentsRecord.safeParse(resolveStepReferencesDeep(step.arguments, results));
  const resolved = parsed.success ? parsed.data : {};
  const resolvedStep: PlannedStep = { ...step, arguments: resolved };
  const resolvedPlan = plan.steps.map((candidate) =>
    candidate.stepId === step.stepId ? resolvedStep : candidate,
  );
  const loaded = deps.policy();
  const verified = agentVerified(request.agentId, task, loaded.policy);
  const actionClass = actionClassOf(resolvedStep);
  const trust =
    verified && request.agentId !== null
      ? ((await loadTrust(sql, request.agentId, [actionClass])).get(actionClass) ?? NEW_TRUST)
      : null;
  const taskFacts = { kind: plan.kind, goal: task.goal, input: task.input, agentId: request.agentId };
  const risk = raiseByValues(
    assessRisk(resolvedStep, { plan: resolvedPlan, task: taskFacts }),
    resolvedStep,
    step.arguments,
    resolved,
  );
  const checked = validateToolArguments(toolRegistry, step.tool, resolved, undefined, deps.checkContext);
  const evaluated = decideStep(
    evaluateStep({
      step: resolvedStep,
      plan: resolvedPlan,
      task: taskFacts,
      agentVerified: verified,
      trust,
      policy: loaded.policy,
      risk,
    }),
    resolvedStep,
    deps.autoApprove,
  );
  // Values that make the call invalid (a path out of the workspace, a refused URL) reject it.
  const decision = checked.ok
    ? evaluated
    : {
        ...evaluated,
        outcome: 'rejected' as const,
        basis: `values:${checked.error.code}`,
        reason: `the call with its values is invalid: ${checked.error.message}`,
      };
  const hash = argumentsHash(resolved);
  const human = decision.outcome === 'needs-human';
  const status = human ? 'pending' : decision.outcome === 'auto-approved' ? 'approved' : 'rejected';
  const decidedBy = human ? null : `policy:${decision.basis}`;
  const trustScore = trust === null ? null : effectiveScore(trust);
  await sql.query(
    `UPDATE "ApprovalRequest"
        SET "status" = $2, "mode" = $3, "resolvedArguments" = $4::jsonb, "argumentsHash" = $5,
            "riskLevel" = $6, "riskReasons" = $7::jsonb, "basis" = $8, "reason" = $9,
            "trustAtDecision" = $10::float8, "actionClass" = $11, "decidedBy" = $12,
            "decidedAt" = CASE WHEN $12::text IS NULL THEN NULL ELSE ${UTC_NOW} END,
            "approverGroup" = $13, "onExpiry" = $14,
            "deadline" = CASE WHEN $15::text IS NULL THEN NULL
                              ELSE ${UTC_NOW} + ($15::text || ' milliseconds')::interval END,
            "updatedAt" = ${UTC_NOW}
      WHERE "id" = $1::uuid AND "status" = 'awaiting-values'`,
    [
      request.id,
      status,
      human ? 'human' : 'auto',
      toJsonText(resolved),
      hash,
      decision.risk.level,
      toJsonText(decision.risk.reasons),
      decision.basis,
      decision.reason,
      trustScore,
      actionClass,
      decidedBy,
      human ? decision.group : null,
      human ? decision.onExpiry : null,
      human ? String(decision.deadlineMs) : null,
    ],
  );
  await writeAudit(sql, [
    {
      action: human ? 'approval.requested' : `approval.auto-${status}`,
      subject: { type: 'step', id: request.stepId },
      actor: decidedBy,
      reason: decision.reason,
      data: {
        approvalId: request.id,
        taskId: request.taskId,
        planId: request.planId,
        tool: step.tool,
        withValues: true,
        resolvedArguments: resolved,
        riskLevel: decision.risk.level,
        riskReasons: decision.risk.reasons,
        actionClass,
        basis: decision.basis,
        trust: trustScore,
        agentVerified: verified,
        policyVersion: loaded.version,
        policyHash: loaded.hash,
      },
    },
  ]);
  const row = (await findRequest(sql, { id: request.id })) ?? request;
  if (human) {
    const queued = await queueApproverWebhooks(
      sql,
      deps.endpoints(),
      'approval.requested',
      row,
      { arguments: resolved },
      'requested:values',
    );
    return { outcome: 'pending', messages: [requestedMessage(deps.prefix, row)], queued };
  }
  return {
    outcome: status === 'approved' ? 'auto-approved' : 'auto-rejected',
    messages: [
      decidedMessage(
        deps.prefix,
        { ...row, stepId: request.stepId },
        {
          decision: status === 'approved' ? 'approved' : 'rejected',
          mode: 'auto',
          decidedBy,
          reason: decision.reason,
        },
      ),
    ],
    queued: 0,
  };
}
