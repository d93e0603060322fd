import { prepared } from '../prepared.js';
import { json } from '../column-types.js';
import type { PlanMetrics as PlanMetricsTable } from '../generated/kysely.js';
import type { Tx } from '../transaction.js';
import { utcNow } from '../queryable.js';

// The only module that writes "PlanMetrics" (writer: planner): how a plan version was made, and later
// how its task ended, so quality scores can be checked against outcomes.

/** How a task ended, as stored beside its plan's quality score. */
export type PlanOutcome = NonNullable<PlanMetricsTable['outcome']>;

/** The figures of one plan version. */
export interface NewPlanMetrics {
  planId: string;
  taskId: string;
  stepCount: number;
  validationErrors: number;
  repairAttempts: number;
  qualityScore: number;
  /** The factors the score was computed from (and the learned patterns shown), stored as JSON. */
  qualityFactors: Record<string, unknown>;
  estimatedCostUsd: number;
  planningMs: number;
}

/** Inserts the figures of a plan version. */
export async function insertPlanMetrics(tx: Tx, metrics: NewPlanMetrics): Promise<void> {
  await tx
    .insertInto('PlanMetrics')
    .values({
      planId: metrics.planId,
      taskId: metrics.taskId,
      stepCount: metrics.stepCount,
      validationErrors: metrics.validationErrors,
      repairAttempts: metrics.repairAttempts,
      qualityScore: metrics.qualityScore,
      qualityFactors: json(metrics.qualityFactors),
      estimatedCostUsd: metrics.estimatedCostUsd,
      planningMs: metrics.planningMs,
      createdAt: utcNow(),
    })
    .execute();
}

/**
 * Stores how a task ended beside the figures of the plan version that ran (`planVersion`, or the newest
 * when the event does not say), once: an outcome already stored is kept.
 */
export async function recordPlanOutcome(
  tx: Tx,
  outcome: { taskId: string; planVersion: number | null; outcome: PlanOutcome; at: Date },
): Promise<void> {
  const { taskId, planVersion } = outcome;
  const set = { taskId, outcome: outcome.outcome, at: outcome.at };
  if (planVersion === null) await setNewestOutcome(tx, set);
  else await setVersionOutcome(tx, { ...set, planVersion });
}

type OutcomeSet = { taskId: string; outcome: PlanOutcome; at: Date };

/** The outcome of the task's newest plan version. */
const setNewestOutcome = prepared((db, p: OutcomeSet) =>
  db
    .updateTable('PlanMetrics')
    .set({ outcome: p.outcome, outcomeAt: p.at })
    .where('outcome', 'is', null)
    .where('planId', '=', (eb) =>
      eb.selectFrom('Plan').select('id').where('taskId', '=', p.taskId).orderBy('version', 'desc').limit(1),
    ),
);

/** The outcome of one plan version of the task. */
const setVersionOutcome = prepared((db, p: OutcomeSet & { planVersion: number }) =>
  db
    .updateTable('PlanMetrics')
    .set({ outcome: p.outcome, outcomeAt: p.at })
    .where('outcome', 'is', null)
    .where('planId', '=', (eb) =>
      eb
        .selectFrom('Plan')
        .select('id')
        .where('taskId', '=', p.taskId)
        .where('version', '=', p.planVersion)
        .orderBy('version', 'desc')
        .limit(1),
    ),
);
