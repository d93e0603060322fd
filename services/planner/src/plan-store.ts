import { randomUUID } from 'node:crypto';
import { PlanProposed, type PlanOrigin, type PlannedStep, type TaskRequestRef } from '@tandem/contracts';
import { UTC_NOW as NOW, enqueueOutboxSql, type Sql, toJsonText } from '@tandem/db';
import { outboxEvent } from '@tandem/service-kit';
import type { ValidatedStep } from './domain/planning.js';
import type { QualityFactors } from './domain/quality.js';

export type { ValidatedStep } from './domain/planning.js';

/** What a stored plan version needs besides its steps. */
export interface PlanVersionInput {
  task: { id: string; kind: string; agentId: string | null; request: TaskRequestRef };
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
  strategy: string | null;
  /** Learned patterns shown to the planning model (stored with the plan's metrics for feedback). */
  patternIds?: readonly string[];
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
  sql: Sql,
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
    await sql.query(
      `UPDATE "Plan" SET "status" = 'superseded' WHERE "id" = $1::uuid AND "status" = 'active'`,
      [input.supersedes],
    );
  }
  // Plan, steps and metrics in one statement (one round trip); the steps travel as one JSON array.
  await sql.query(
    `WITH plan AS (
       INSERT INTO "Plan" ("id", "taskId", "version", "strategy", "modelsUsed", "qualityScore", "attempts", "status",
                           "origin", "supersedesId", "editedBy", "editedByLabel", "estimatedCostUsd", "createdAt")
       VALUES ($1::uuid, $2::uuid, $3, $4, $5::jsonb, $6, $7, 'active', $8, $9::uuid, $10, $18, $11, ${NOW})
       RETURNING "id"),
     steps AS (
       INSERT INTO "PlanStep" ("id", "planId", "stepKey", "index", "dependsOn", "tool", "arguments", "riskClass",
                               "rationale", "idempotencyKey")
       SELECT (x->>'stepId')::uuid, plan."id", x->>'key', (x->>'index')::int,
              ARRAY(SELECT jsonb_array_elements_text(x->'dependsOn')), x->>'tool', x->'arguments', x->>'riskClass',
              x->>'rationale', x->>'idempotencyKey'
         FROM plan, jsonb_array_elements($12::jsonb) AS x)
     INSERT INTO "PlanMetrics" ("planId", "taskId", "stepCount", "validationErrors", "repairAttempts", "qualityScore",
                                "qualityFactors", "estimatedCostUsd", "planningMs", "createdAt")
     SELECT plan."id", $2::uuid, $13, $14, $15, $6, $16::jsonb, $11, $17, ${NOW} FROM plan`,
    [
      planId,
      input.task.id,
      input.version,
      input.strategy,
      toJsonText(input.models),
      input.quality.score,
      input.attempts,
      input.origin,
      input.supersedes,
      input.editedBy,
      input.estimatedCostUsd,
      toJsonText(
        steps.map((step) => ({
          stepId: step.stepId,
          key: step.key,
          index: step.index,
          dependsOn: step.dependsOn,
          tool: step.tool,
          arguments: step.arguments,
          riskClass: step.riskClass,
          rationale: step.rationale ?? null,
          idempotencyKey: `${input.task.id}:${input.version}:${step.key}`,
        })),
      ),
      steps.length,
      input.invalidCalls,
      Math.max(0, input.attempts - 1),
      toJsonText({ ...input.quality.factors, patternIds: input.patternIds ?? [] }),
      input.planningMs,
      input.editedByLabel ?? null,
    ],
  );
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
  await enqueueOutboxSql(sql, message);
  return { planId, steps };
}
