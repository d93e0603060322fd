import { ApprovalView, JsonValue, RiskReason, toolRegistry, type PlannedStep } from '@tandem/contracts';
import {
  approvalTaskContext,
  completedStepResults,
  findApprovalRequest,
  listApprovalRequests,
  lockApprovalRequest,
  parseStored,
  planStepContext,
  planStepsForViews,
  storedPlanSteps,
  type DbOrTx,
  type ApprovalStatus,
  type StoredApprovalRequest,
  type StoredTaskContext,
  type Tx,
} from '@tandem/db';
import { z } from 'zod';
import type { RequestRow } from './domain/request.js';
import type { StepResults, TaskContext } from './domain/step-judgement.js';

export type { RequestRow } from './domain/request.js';

/** Stored tool arguments (planned, edited or resolved). */
const StoredArguments = z.record(z.string(), JsonValue);
const StoredRiskReasons = z.array(RiskReason);
/** A completed step's stored result (the executor's StepRun.result) as references read it. */
const StoredStepResult = z.object({
  value: JsonValue.nullable().default(null),
  stdout: z.string().default(''),
});
/** The learned patterns a plan used, in its PlanMetrics' quality factors (absent in older plans). */
const QualityFactors = z.looseObject({ patternIds: z.array(z.string()).optional() }).nullable();

/**
 * A stored request with its JSON columns parsed: a value that does not match its schema is
 * DB.ROW_INVALID, never a default.
 */
export function requestRowOf(stored: StoredApprovalRequest): RequestRow {
  const where = `ApprovalRequest ${stored.id}`;
  return {
    ...stored,
    riskReasons: parseStored(StoredRiskReasons.nullable(), stored.riskReasons, `${where}.riskReasons`) ?? [],
    editedArguments: parseStored(
      StoredArguments.nullable(),
      stored.editedArguments,
      `${where}.editedArguments`,
    ),
    resolvedArguments: parseStored(
      StoredArguments.nullable(),
      stored.resolvedArguments,
      `${where}.resolvedArguments`,
    ),
  };
}

/**
 * Lists requests by status (`escalated` = pending after an escalation), task and limit, oldest first.
 * `groups` limits them to what an approver token sees (`maySeeApproverGroup`): those groups' requests,
 * or with no groups the requests without a group; absent, every request (admins).
 */
export async function listRequests(
  source: DbOrTx,
  filter: { status?: ApprovalStatus; taskId?: string; limit: number; groups?: readonly string[] },
): Promise<RequestRow[]> {
  return (await listApprovalRequests(source, filter)).map(requestRowOf);
}

/** One request by id or by its step's id, or null. */
export async function findRequest(
  source: DbOrTx,
  by: { id: string } | { stepId: string },
): Promise<RequestRow | null> {
  const stored = await findApprovalRequest(source, by);
  return stored === null ? null : requestRowOf(stored);
}

/** {@link findRequest}, the row locked for update until the transaction ends. */
export async function lockRequest(
  tx: Tx,
  by: { id: string } | { stepId: string },
): Promise<RequestRow | null> {
  const stored = await lockApprovalRequest(tx, by);
  return stored === null ? null : requestRowOf(stored);
}

/** The planned step of a request: its arguments and the learned patterns its plan used. */
export interface StepContext {
  key: string;
  tool: string;
  arguments: Record<string, JsonValue>;
  patternIds: string[];
}

/** The planned step of a request, or null when the planner's row is missing. */
export async function stepContext(source: DbOrTx, stepId: string): Promise<StepContext | null> {
  const row = await planStepContext(source, stepId);
  if (!row) return null;
  const factors = parseStored(
    QualityFactors,
    row.qualityFactors,
    `PlanMetrics.qualityFactors of step ${stepId}`,
  );
  return {
    key: row.key,
    tool: row.tool,
    arguments: parseStored(StoredArguments, row.arguments, `PlanStep.arguments of step ${stepId}`),
    patternIds: factors?.patternIds ?? [],
  };
}

/** The task's context from its stored row (a missing row reads as an empty task). */
export function taskContextOf(stored: StoredTaskContext | null, taskId: string): TaskContext {
  if (stored === null) return { goal: '', input: null, submittedBy: null, source: null };
  return {
    goal: stored.goal,
    input: parseStored(JsonValue.nullable(), stored.input, `Task.input of task ${taskId}`),
    submittedBy: stored.submittedBy,
    source: stored.source,
  };
}

/** The task's context alone (for work done before the plan's transaction). */
export async function readTaskContext(source: DbOrTx, taskId: string): Promise<TaskContext> {
  return taskContextOf(await approvalTaskContext(source, taskId), taskId);
}

/** The API view of requests: arguments as planned, the plan around each step, risk, trust and basis. */
export async function toViews(source: DbOrTx, rows: readonly RequestRow[]): Promise<ApprovalView[]> {
  const planIds = [...new Set(rows.map((row) => row.planId))];
  const plans = new Map<string, NonNullable<ApprovalView['plan']>>();
  const argumentsByStep = new Map<string, JsonValue>();
  for (const row of await planStepsForViews(source, planIds)) {
    const value = parseStored(JsonValue, row.arguments, `PlanStep.arguments of step ${row.stepId}`);
    argumentsByStep.set(row.stepId, value);
    const steps = plans.get(row.planId) ?? [];
    steps.push({
      stepId: row.stepId,
      key: row.key,
      tool: row.tool,
      arguments: value,
      riskClass: row.riskClass,
      riskLevel: row.riskLevel,
    });
    plans.set(row.planId, steps);
  }
  return rows.map((row) =>
    ApprovalView.parse({
      id: row.id,
      taskId: row.taskId,
      planId: row.planId,
      stepId: row.stepId,
      tool: row.tool,
      arguments: row.stepId ? (argumentsByStep.get(row.stepId) ?? null) : null,
      riskClass: row.riskClass,
      agentId: row.agentId,
      kind: row.kind,
      question: row.question,
      answer: row.answer,
      mode: row.mode,
      status: row.status,
      decidedBy: row.decidedBy,
      decidedAt: row.decidedAt?.toISOString() ?? null,
      reason: row.reason,
      createdAt: row.createdAt.toISOString(),
      riskLevel: row.riskLevel,
      riskReasons: row.riskReasons,
      trust: row.trustAtDecision,
      actionClass: row.actionClass,
      basis: row.basis,
      deadline: row.deadline?.toISOString() ?? null,
      group: row.approverGroup,
      escalationLevel: row.escalationLevel,
      editedArguments: row.editedArguments,
      resolvedArguments: row.resolvedArguments,
      plan: plans.get(row.planId) ?? [],
    }),
  );
}

/** A stored plan as the plan handler judged it: its steps (the planner's rows) and the task's kind. */
export interface StoredPlan {
  kind: string;
  steps: PlannedStep[];
}

/**
 * The steps of a stored plan as the plan handler judged them (the planner's rows), with the task's kind:
 * what an edited or resolved step is judged again against.
 */
export async function storedPlan(source: DbOrTx, planId: string): Promise<StoredPlan> {
  const stored = await storedPlanSteps(source, planId);
  return {
    kind: stored.kind ?? 'general',
    steps: stored.steps.map((step) => ({
      stepId: step.stepId,
      key: step.key,
      index: step.index,
      tool: step.tool,
      arguments: parseStored(StoredArguments, step.arguments, `PlanStep.arguments of step ${step.stepId}`),
      riskClass: step.riskClass,
      sideEffects: toolRegistry.get(step.tool)?.sideEffects ?? true,
      dependsOn: step.dependsOn,
    })),
  };
}

/**
 * The results of a plan's completed steps by key, parsed like the executor parses them (it resolves the
 * same references from the same rows): a result that does not match is DB.ROW_INVALID; a completed step
 * without a result resolves nothing.
 */
export async function completedResults(source: DbOrTx, planId: string): Promise<StepResults> {
  const results = new Map<string, { value: JsonValue; stdout: string }>();
  for (const row of await completedStepResults(source, planId)) {
    const result = parseStored(
      StoredStepResult.nullable(),
      row.result,
      `StepRun.result of step ${row.stepId}`,
    );
    if (result !== null) results.set(row.key, result);
  }
  return results;
}
