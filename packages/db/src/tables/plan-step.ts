import type { JsonValue, RiskClass } from '@tandem/contracts';
import { json } from '../column-types.js';
import type { Tx } from '../transaction.js';

// The only module that writes "PlanStep" (writer: planner): the steps of a plan version, written once
// with their plan and never changed.

/** One step of a plan version to store. */
export interface NewPlanStep {
  id: string;
  stepKey: string;
  index: number;
  dependsOn: readonly string[];
  tool: string;
  arguments: Record<string, JsonValue>;
  riskClass: RiskClass;
  rationale: string | null;
  /** Unique over every plan: `<taskId>:<version>:<stepKey>`. */
  idempotencyKey: string;
}

/** Inserts the steps of a plan version (one statement). */
export async function insertPlanSteps(tx: Tx, planId: string, steps: readonly NewPlanStep[]): Promise<void> {
  if (steps.length === 0) return;
  await tx
    .insertInto('PlanStep')
    .values(
      steps.map((step) => ({
        id: step.id,
        planId,
        stepKey: step.stepKey,
        index: step.index,
        dependsOn: [...step.dependsOn],
        tool: step.tool,
        arguments: json(step.arguments),
        riskClass: step.riskClass,
        rationale: step.rationale,
        idempotencyKey: step.idempotencyKey,
      })),
    )
    .execute();
}
