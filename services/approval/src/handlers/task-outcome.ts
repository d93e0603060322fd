import { ErrorCodes, type TaskOutcomeCloudEvent } from '@tandem/contracts';
import { poolSql, sqlTransaction, type Db } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { reportTrust, trustSubject } from '../decisions.js';
import type { TrustEventKind } from '../domain/trust.js';
import type { ApprovalMetrics } from '../metrics.js';
import { REQUEST_SELECT, requestRows } from '../requests.js';
import { applyTrustChange, type AppliedTrustChange } from '../trust-store.js';

/** Consumer names (wire names: renaming one creates a new durable consumer). */
export const TASK_COMPLETED_CONSUMER = 'approval-task-completed';
/** Consumer of `task.failed.v1`. */
export const TASK_FAILED_CONSUMER = 'approval-task-failed';

/** Sandbox limits: the step's code ran away (counts against trust more than a plain failure). */
const LIMIT_CODES: ReadonlySet<string> = new Set([
  ErrorCodes.SANDBOX_TIMEOUT,
  ErrorCodes.SANDBOX_MEMORY_LIMIT,
  ErrorCodes.SANDBOX_OUTPUT_LIMIT,
  ErrorCodes.SANDBOX_KILLED,
]);

/** Refusals of the tool policy at run time, and limits: the step tried something it may not. */
const SAFETY_CODES: ReadonlySet<string> = new Set([
  ...LIMIT_CODES,
  ErrorCodes.TOOL_URL_REJECTED,
  ErrorCodes.TOOL_PATH_REJECTED,
  ErrorCodes.TOOL_HEADER_REJECTED,
]);

/** How a failure changes the failing step's trust: null when it says nothing about the step. */
export function failureKind(code: string): TrustEventKind | null {
  // A human, a deadline, a cancel, a budget or the task's own deadline stopped it.
  if (code.startsWith('APPROVAL.') || code.startsWith('TASK.') || code.startsWith('BUDGET.')) return null;
  return LIMIT_CODES.has(code) ? 'limit' : 'failure';
}

/**
 * Verified outcomes earn and lose trust, read from the task's outcome (one message per task, not one per
 * step): when a task completes, each of its steps this service approved is a success of its agent in its
 * action class; when it fails, the failing step is a failure (a sandbox limit weighs more), and the other
 * steps count for nothing. Only steps whose submitter could act as the agent count. An auto-approved step
 * that failed for a safety reason is a false approval. A completed task without an agent costs nothing,
 * any other task without such steps one read and no write. Idempotent through the trust event's source (`step:<id>:finished`); the false-approval metric
 * counts again if a message is redelivered (a metric, not a record).
 */
export async function handleTaskOutcome(
  deps: { db: Db; metrics: ApprovalMetrics },
  event: TaskOutcomeCloudEvent,
  context: { log: Log },
): Promise<void> {
  const data = event.data;
  // A completed task without an agent changes no trust and holds no false approval: nothing to read.
  if (data.status === 'completed' && (data.agentId === null || data.agentId === undefined)) return;
  const result = await poolSql(deps.db).query(
    `SELECT ${REQUEST_SELECT}, s."stepKey"
       FROM "ApprovalRequest" r
       JOIN "Plan" p ON p."id" = r."planId"
       JOIN "PlanStep" s ON s."id" = r."stepId"
      WHERE r."taskId" = $1::uuid
        AND p."version" = coalesce($2::int, (SELECT max("version") FROM "Plan" WHERE "taskId" = $1::uuid))`,
    [data.taskId, data.planVersion ?? null],
  );
  const requests = requestRows(result.rows).map((request, index) => ({
    request,
    key: String(result.rows[index]?.['stepKey'] ?? ''),
  }));
  const failure = data.status === 'failed' ? data.error : null;
  const changes: Array<{ request: (typeof requests)[number]['request']; key: string; kind: TrustEventKind }> =
    [];
  for (const { request, key } of requests) {
    if (failure !== null) {
      if (failure.stepId !== key) continue;
      if (request.mode === 'auto' && request.status === 'approved' && SAFETY_CODES.has(failure.code)) {
        deps.metrics.falseApprovals.inc({ reason: failure.code });
      }
      const kind = failureKind(failure.code);
      if (kind !== null) changes.push({ request, key, kind });
    } else if (request.status === 'approved' || request.status === 'answered') {
      changes.push({ request, key, kind: 'success' });
    }
  }
  const counted = changes.filter((change) => trustSubject(change.request) !== null);
  if (counted.length === 0) return;
  const applied = await sqlTransaction(deps.db, async (sql) => {
    const done: Array<AppliedTrustChange | null> = [];
    for (const { request, key, kind } of counted) {
      const subject = trustSubject(request);
      if (subject === null) continue;
      done.push(
        await applyTrustChange(sql, {
          ...subject,
          kind,
          sourceEvent: `step:${request.stepId ?? request.id}:finished`,
          reason:
            kind === 'success'
              ? `step ${key} (${request.tool ?? 'unknown'}) completed in a completed task`
              : `step ${key} (${request.tool ?? 'unknown'}) failed: ${failure?.code ?? 'unknown'}`,
          actor: null,
        }),
      );
    }
    return done;
  });
  reportTrust(deps.metrics, applied);
  context.log.debug(
    { taskId: data.taskId, status: data.status, changes: applied.filter((change) => change !== null).length },
    'task outcome applied to trust',
  );
}
