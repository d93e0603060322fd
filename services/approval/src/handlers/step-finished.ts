import { ErrorCodes, type Envelope, type EventData, type StepFinished } from '@tandem/contracts';
import { markProcessedSql, sqlTransaction, type Db } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { reportTrust, trustSubject } from '../decisions.js';
import type { TrustEventKind } from '../domain/trust.js';
import type { ApprovalMetrics } from '../metrics.js';
import { findRequest } from '../requests.js';
import { applyTrustChange, type AppliedTrustChange } from '../trust-store.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const STEP_FINISHED_CONSUMER = 'approval-step-finished';

/** Sandbox limits: the step's code ran away (counts against trust more than a plain failure). */
const LIMIT_CODES: ReadonlySet<string> = new Set([
  ErrorCodes.SANDBOX_TIMEOUT,
  ErrorCodes.SANDBOX_MEMORY_LIMIT,
  ErrorCodes.SANDBOX_OUTPUT_LIMIT,
  ErrorCodes.SANDBOX_KILLED,
]);

/** Refusals of the tool policy at run time: the step tried something it may not. */
const SAFETY_CODES: ReadonlySet<string> = new Set([
  ...LIMIT_CODES,
  ErrorCodes.TOOL_URL_REJECTED,
  ErrorCodes.TOOL_PATH_REJECTED,
  ErrorCodes.TOOL_HEADER_REJECTED,
]);

/** Failures that say nothing about the agent's step (a human or the task stopped it). */
function notTheStepsFault(code: string): boolean {
  return code.startsWith('APPROVAL.') || code.startsWith('TASK.');
}

/** How an outcome changes trust: null when it does not count. */
export function trustEventOf(finished: EventData<typeof StepFinished>): TrustEventKind | null {
  if (finished.status === 'completed') return 'success';
  const code = finished.error?.code ?? ErrorCodes.STEP_FAILED;
  if (notTheStepsFault(code)) return null;
  return LIMIT_CODES.has(code) ? 'limit' : 'failure';
}

/**
 * Verified outcomes earn and lose trust: a completed step is a success of its agent in its action class,
 * a sandbox limit or a failure count against it. Only steps this service decided count, and only for an
 * agent the submitter could act as. An auto-approved step that failed for a safety reason is a false
 * approval. Idempotent: the inbox row and the trust event's source (`step:<id>:finished`).
 */
export async function handleStepFinished(
  deps: { db: Db; metrics: ApprovalMetrics },
  envelope: Envelope<EventData<typeof StepFinished>>,
  context: { messageId: string; log: Log },
): Promise<void> {
  const finished = envelope.data;
  const kind = trustEventOf(finished);
  let change: AppliedTrustChange | null = null;
  let falseApproval: string | null = null;
  await sqlTransaction(deps.db, async (sql) => {
    if (!(await markProcessedSql(sql, STEP_FINISHED_CONSUMER, context.messageId))) return;
    const request = await findRequest(sql, { stepId: finished.stepId });
    if (!request) return;
    const code = finished.error?.code ?? null;
    if (request.mode === 'auto' && request.status === 'approved' && code !== null && SAFETY_CODES.has(code)) {
      falseApproval = code;
    }
    const subject = trustSubject(request);
    if (kind === null || subject === null) return;
    change = await applyTrustChange(sql, {
      ...subject,
      kind,
      sourceEvent: `step:${finished.stepId}:finished`,
      reason:
        kind === 'success'
          ? `step ${finished.key} (${finished.tool}) completed`
          : `step ${finished.key} (${finished.tool}) failed: ${code ?? 'unknown'}`,
      actor: null,
    });
  });
  reportTrust(deps.metrics, [change]);
  if (falseApproval !== null) deps.metrics.falseApprovals.inc({ reason: falseApproval });
  context.log.debug(
    { stepId: finished.stepId, kind, changed: change !== null },
    'step outcome applied to trust',
  );
}
