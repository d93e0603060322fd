/** A plan of the task that approval already holds requests for; `version` null when its Plan row is unknown. */
export interface StoredPlan {
  planId: string;
  version: number | null;
}

/** What to do with an arriving plan version. */
export type PlanStanding = { stale: true; newerVersion: number } | { stale: false; supersede: string[] };

/**
 * Places an arriving plan among the plans of its task that already have requests. A plan is stale when
 * one of at least its version is already held (versions can arrive out of order: v1 redelivered after
 * v2): it creates nothing. Otherwise it supersedes every older version it knows of, and the plan it
 * names in `supersedes` even when that plan's version is unknown. Superseding all older versions, not
 * only the named one, covers v3 arriving before v2 while v1 still waits.
 */
export function planStanding(
  incoming: { planId: string; version: number; supersedes?: string | null | undefined },
  stored: readonly StoredPlan[],
): PlanStanding {
  const others = stored.filter((plan) => plan.planId !== incoming.planId);
  let newerVersion: number | null = null;
  for (const plan of others) {
    if (plan.version !== null && plan.version >= incoming.version) {
      newerVersion = Math.max(newerVersion ?? plan.version, plan.version);
    }
  }
  if (newerVersion !== null) return { stale: true, newerVersion };
  const supersede = others
    .filter(
      (plan) =>
        (plan.version !== null && plan.version < incoming.version) || plan.planId === incoming.supersedes,
    )
    .map((plan) => plan.planId);
  return { stale: false, supersede };
}
