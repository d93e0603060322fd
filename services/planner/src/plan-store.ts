import { randomUUID } from 'node:crypto';
import { PlanProposed, type PlanOrigin, type PlannedStep, type TaskRequestRef } from '@tandem/contracts';
import { enqueueOutbox, type Tx } from '@tandem/db';
import { outboxEvent, toJsonInput } from '@tandem/service-kit';
import type { ValidatedStep } from './domain/planning.js';
import type { QualityFactors } from './domain/quality.js';

export type { ValidatedStep } from './domain/planning.js';

/** What a stored plan version needs besides its steps. */
export interface PlanVersionInput {
  task: { id: string; kind: string; agentId: string | null; request: TaskRequestRef };
  version: number;
  origin: PlanOrigin;
  supersedes: string | null;
  editedBy: string | null;
  /** Steps in execution order (a topological order of their dependencies). */
  steps: ValidatedStep[];
  models: string[];
  strategy: string | null;
  attempts: number;
  invalidCalls: number;
  planningMs: number;
  quality: { score: number; factors: QualityFactors };
  estimatedCostUsd: number;
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
  const steps: PlannedStep[] = input.steps.map((step, index) => ({
    stepId: randomUUID(),
    key: step.key,
    index,
    tool: step.tool.name,
    arguments: step.arguments,
    riskClass: step.tool.risk,
    sideEffects: step.tool.sideEffects,
    dependsOn: step.dependsOn,
    rationale: step.rationale,
  }));
  if (input.supersedes !== null) {
    await tx.plan.updateMany({
      where: { id: input.supersedes, status: 'active' },
      data: { status: 'superseded' },
    });
  }
  await tx.plan.create({
    data: {
      id: planId,
      taskId: input.task.id,
      version: input.version,
      modelsUsed: input.models,
      qualityScore: input.quality.score,
      attempts: input.attempts,
      strategy: input.strategy,
      origin: input.origin,
      supersedesId: input.supersedes,
      editedBy: input.editedBy,
      estimatedCostUsd: input.estimatedCostUsd,
    },
  });
  await tx.planStep.createMany({
    data: steps.map((step) => ({
      id: step.stepId,
      planId,
      stepKey: step.key,
      index: step.index,
      dependsOn: step.dependsOn,
      tool: step.tool,
      arguments: step.arguments,
      riskClass: step.riskClass,
      rationale: step.rationale ?? null,
      idempotencyKey: `${input.task.id}:${input.version}:${step.key}`,
    })),
  });
  await tx.planMetrics.create({
    data: {
      planId,
      taskId: input.task.id,
      stepCount: steps.length,
      validationErrors: input.invalidCalls,
      repairAttempts: Math.max(0, input.attempts - 1),
      qualityScore: input.quality.score,
      qualityFactors: toJsonInput(input.quality.factors),
      estimatedCostUsd: input.estimatedCostUsd,
      planningMs: input.planningMs,
    },
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
    },
    { correlationId: input.task.id, causationId: input.causationId },
  );
  await enqueueOutbox(tx, message);
  return { planId, steps };
}
