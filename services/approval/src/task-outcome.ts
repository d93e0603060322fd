import type { TaskOutcomeCloudEvent } from '@tandem/contracts';
import type { Committed, ConsumerContext } from '@tandem/bus';
import { approvalRequestsOfPlanVersion, type Tx } from '@tandem/db';
import type { ApprovalConsumerDeps } from './consumers.js';
import { reportTrust } from './decisions.js';
import { outcomeMayChangeTrust, outcomeTrustChanges } from './domain/task-outcome.js';
import { requestRowOf } from './requests.js';
import { applyTrustChange, type AppliedTrustChange } from './trust-store.js';

/** What a task's outcome did: the trust changes applied, and the false approvals it revealed. */
export interface OutcomeApplied {
  applied: Array<AppliedTrustChange | null>;
  falseApprovals: string[];
}

/**
 * The effects of a task's outcome (`task.completed` / `task.failed`), in the message's transaction: loads
 * the requests of the plan version that ran, decides what the outcome does to trust
 * (domain/task-outcome.ts), applies each change once (its source is the step: `step:<id>:finished`).
 */
export async function applyTaskOutcome(tx: Tx, event: TaskOutcomeCloudEvent): Promise<OutcomeApplied> {
  const data = event.data;
  // A completed task without an agent changes no trust and holds no false approval: nothing to read.
  if (!outcomeMayChangeTrust(data)) return { applied: [], falseApprovals: [] };
  const rows = await approvalRequestsOfPlanVersion(tx, data.taskId, data.planVersion ?? null);
  const { changes, falseApprovals } = outcomeTrustChanges(
    data,
    rows.map((row) => ({ request: requestRowOf(row), key: row.stepKey })),
  );
  const applied: Array<AppliedTrustChange | null> = [];
  for (const change of changes) applied.push(await applyTrustChange(tx, { ...change, actor: null }));
  return { applied, falseApprovals };
}

/** After COMMIT: the trust gauge and the false-approval counter, and a debug line. */
export async function reportTaskOutcome(
  committed: Committed<OutcomeApplied>,
  event: TaskOutcomeCloudEvent,
  context: ConsumerContext<ApprovalConsumerDeps>,
): Promise<void> {
  if (committed.duplicate) return;
  const { metrics } = context.deps;
  for (const reason of committed.value.falseApprovals) metrics.falseApprovals.inc({ reason });
  reportTrust(metrics, committed.value.applied);
  context.log.debug(
    {
      taskId: event.data.taskId,
      status: event.data.status,
      changes: committed.value.applied.filter((change) => change !== null).length,
    },
    'task outcome applied to trust',
  );
}
