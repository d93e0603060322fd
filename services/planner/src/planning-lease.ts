import { renewPlanningLease, transaction } from '@tandem/db';
import type { PlanningDeps } from './consumers.js';

/**
 * Renews a task's planning lease (its `updatedAt`) every third of the lease until the returned function
 * is called; nothing when the deps have no lease. A renewal is not worth a WAL flush: losing one in a
 * crash only lets the lease run out sooner, which is what a crash means anyway.
 */
export function holdPlanningLease(
  deps: Pick<PlanningDeps, 'db' | 'log' | 'planningLeaseMs'>,
  taskId: string,
): () => void {
  const leaseMs = deps.planningLeaseMs;
  if (leaseMs === undefined) return () => undefined;
  const timer = setInterval(
    () => {
      transaction(deps.db, (tx) => renewPlanningLease(tx, taskId), { durable: false }).catch(
        (error: unknown) => deps.log.warn({ err: error, taskId }, 'could not renew a planning lease'),
      );
    },
    Math.max(50, Math.floor(leaseMs / 3)),
  );
  timer.unref();
  return () => clearInterval(timer);
}
