import { randomUUID } from 'node:crypto';
import {
  PlanFailed,
  PlanProposed,
  type ErrorShape,
  type LearningPatternsReply,
  type PlanOrigin,
  type PlannedStep,
  type TaskBudget,
  type TaskRequestRef,
} from '@tandem/contracts';
import {
  enqueueOutbox,
  insertPlan,
  insertPlanMetrics,
  insertPlanSteps,
  supersedePlan,
  type OutboxMessage,
  type Tx,
} from '@tandem/db';
import { outboxEvent } from '@tandem/service-kit';
import type { PlanningDeps } from './consumers.js';
import type { ValidatedStep } from './domain/planning.js';
import { modelPlanFigures, stepsToStore, type PlanFigures } from './domain/plan-record.js';

export type { ValidatedStep } from './domain/planning.js';

/** The task a plan belongs to, as its events name it. */
export interface PlanTask {
  id: string;
  kind: string;
  agentId: string | null;
  request: TaskRequestRef;
}

/** What a stored plan version needs besides its steps. */
export interface PlanVersionInput {
  task: PlanTask;
  version: number;
  origin: PlanOrigin;
  supersedes: string | null;
  /** The editing token of a human edit (`token:<ApiToken.id>`). */
  editedBy: string | null;
  /** The name the edit's body gave: a label beside `editedBy`. */
  editedByLabel?: string | null;
  /** Steps in execution order (a topological order of their dependencies). */
  steps: ValidatedStep[];
  models: string[];
  figures: PlanFigures;
  attempts: number;
  invalidCalls: number;
  planningMs: number;
  causationId: string | null;
}

/**
 * Stores one plan version (plan, steps, metrics) and its `plan.proposed` event in the caller's
 * transaction; the superseded version, if any, is marked so. Step idempotency keys carry the version,
 * so a re-plan's steps never collide with the old ones.
 */
export async function storePlanVersion(
  tx: Tx,
  options: { prefix: string },
  input: PlanVersionInput,
): Promise<{ planId: string; steps: PlannedStep[] }> {
  const planId = randomUUID();
  const toStore = stepsToStore(input.task.id, input.version, input.steps, randomUUID);
  const steps = toStore.map((entry) => entry.step);
  const { figures } = input;
  if (input.supersedes !== null) await supersedePlan(tx, input.supersedes);
  await insertPlan(tx, {
    id: planId,
    taskId: input.task.id,
    version: input.version,
    strategy: figures.strategy,
    models: input.models,
    qualityScore: figures.quality.score,
    attempts: input.attempts,
    origin: input.origin,
    supersedesId: input.supersedes,
    editedBy: input.editedBy,
    editedByLabel: input.editedByLabel ?? null,
    estimatedCostUsd: figures.estimatedCostUsd,
  });
  await insertPlanSteps(
    tx,
    planId,
    toStore.map(({ step, idempotencyKey }) => ({
      id: step.stepId,
      stepKey: step.key,
      index: step.index,
      dependsOn: step.dependsOn,
      tool: step.tool,
      arguments: step.arguments,
      riskClass: step.riskClass,
      rationale: step.rationale ?? null,
      idempotencyKey,
    })),
  );
  await insertPlanMetrics(tx, {
    planId,
    taskId: input.task.id,
    stepCount: steps.length,
    validationErrors: input.invalidCalls,
    repairAttempts: Math.max(0, input.attempts - 1),
    qualityScore: figures.quality.score,
    qualityFactors: { ...figures.quality.factors, patternIds: figures.patternIds },
    estimatedCostUsd: figures.estimatedCostUsd,
    planningMs: input.planningMs,
  });
  const { message } = outboxEvent(
    { prefix: options.prefix, publisher: 'planner' },
    PlanProposed,
    {
      taskId: input.task.id,
      planId,
      version: input.version,
      request: input.task.request,
      kind: input.task.kind,
      agentId: input.task.agentId,
      steps,
      origin: input.origin,
      supersedes: input.supersedes,
      editedBy: input.editedBy,
      ...(input.editedByLabel ? { editedByLabel: input.editedByLabel } : {}),
    },
    { correlationId: input.task.id, causationId: input.causationId },
  );
  await enqueueOutbox(tx, message);
  return { planId, steps };
}

/** Stores a plan found by the model as `version` and enqueues `plan.proposed`; returns its id and score. */
export async function storeModelPlan(
  deps: Pick<PlanningDeps, 'prefix' | 'estimateStepCostUsd' | 'limits'>,
  tx: Tx,
  input: {
    task: PlanTask;
    budget: TaskBudget | undefined;
    version: number;
    origin: 'model' | 'replan';
    supersedes: string | null;
    steps: ValidatedStep[];
    attempts: number;
    invalidCalls: number;
    models: string[];
    patterns: LearningPatternsReply['patterns'];
    planningMs: number;
    causationId: string;
  },
): Promise<{ planId: string; quality: number }> {
  const figures = modelPlanFigures({
    steps: input.steps,
    attempts: input.attempts,
    invalidCalls: input.invalidCalls,
    patterns: input.patterns,
    budget: input.budget,
    maxSteps: deps.limits.maxSteps,
    estimateStepCostUsd: deps.estimateStepCostUsd,
  });
  const { planId } = await storePlanVersion(
    tx,
    { prefix: deps.prefix },
    {
      task: input.task,
      version: input.version,
      origin: input.origin,
      supersedes: input.supersedes,
      editedBy: null,
      steps: input.steps,
      models: input.models,
      figures,
      attempts: input.attempts,
      invalidCalls: input.invalidCalls,
      planningMs: input.planningMs,
      causationId: input.causationId,
    },
  );
  return { planId, quality: figures.quality.score };
}

/** The `plan.failed` outbox message the executor turns into the task's outcome. */
export function planFailedMessage(
  deps: Pick<PlanningDeps, 'prefix'>,
  task: PlanTask,
  error: ErrorShape,
  causationId: string,
): OutboxMessage {
  return outboxEvent(
    { prefix: deps.prefix, publisher: 'planner' },
    PlanFailed,
    { taskId: task.id, request: task.request, kind: task.kind, agentId: task.agentId, error },
    { correlationId: task.id, causationId },
  ).message;
}
