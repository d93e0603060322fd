/** The run of a task as a new plan version finds it. */
export interface RunOfPlan {
  status: string;
  planId: string | null;
  /** The version of the plan the run runs (null: none). */
  planVersion: number | null;
}

/** Run states in which a task has not ended. */
const UNFINISHED_RUN: ReadonlySet<string> = new Set(['running', 'replanning']);

/** What a `plan.proposed` does to the task's run. */
export type PlanArrival =
  /** No run yet: start one on this plan. */
  | { kind: 'start' }
  /** The run already runs this plan: only missing step rows are created. */
  | { kind: 'same' }
  /** A newer version of a run that has not ended: switch to it; the old version's steps are superseded. */
  | { kind: 'switch'; supersede: string | null }
  /** The task ended: nothing changes. */
  | { kind: 'ended' }
  /** An older (or the same) version arriving late: nothing changes. */
  | { kind: 'older' };

/**
 * Decides what a plan version does to the run: start it, switch a running (or re-planning) run to a
 * newer version, or change nothing (the task ended, or the version is not newer).
 */
export function planArrival(run: RunOfPlan | null, plan: { planId: string; version: number }): PlanArrival {
  if (run === null) return { kind: 'start' };
  if (run.planId === plan.planId) return { kind: 'same' };
  if (!UNFINISHED_RUN.has(run.status)) return { kind: 'ended' };
  if (run.planVersion !== null && run.planVersion >= plan.version) return { kind: 'older' };
  return { kind: 'switch', supersede: run.planId };
}

/** How the plan's run stands once its step rows exist. */
export type PlanStart = 'switched' | 'waiting' | 'decided' | 'ended' | 'older';

/**
 * After the plan's rows are written: a switched run, every step waiting for its decision (all rows new),
 * or some decided already (a decision arrived before the plan).
 */
export function planStart(arrival: PlanArrival, created: number, steps: number): PlanStart {
  if (arrival.kind === 'ended' || arrival.kind === 'older') return arrival.kind;
  if (arrival.kind === 'switch') return 'switched';
  return created === steps ? 'waiting' : 'decided';
}

/** Whether the task is advanced after its plan arrived: not when every step waits or the plan was older. */
export function advancesAfterPlan(start: PlanStart | 'duplicate'): boolean {
  return start !== 'waiting' && start !== 'older';
}
