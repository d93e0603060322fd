import type { TaskCancelRequestedCloudEvent } from '@tandem/contracts';
import type { AuditEntry } from './audit.js';
import type { RequestRow } from './request.js';

/*
 * What a cancel request does to a task's approvals: every open request (pending, or awaiting values)
 * becomes `cancelled` with an audit row each, no `approval.decided` (the executor stops the task on the
 * same cancel request), and a task-level audit row makes plans arriving later create nothing.
 */

/** Audit action recording that a task's approvals were cancelled; plans arriving later create nothing. */
export const TASK_CANCELLED_ACTION = 'approval.task-cancelled';

/**
 * The message id of a CloudEvent: `source` + `id` is its idempotency key (the same rule as the
 * planner's intake, so a key means the same thing in every service's ProcessedMessage rows).
 */
export function cloudEventMessageId(event: { source: string; id: string }): string {
  return `ce:${JSON.stringify([event.source, event.id])}`;
}

/** How a cancel request names its task: by Tandem's id, or by the CloudEvent that requested it. */
export function cancelTargetOf(
  data: TaskCancelRequestedCloudEvent['data'],
): { taskId: string } | { source: string; externalId: string } | null {
  if (data.taskId !== undefined) return { taskId: data.taskId };
  if (data.request !== undefined) return { source: data.request.source, externalId: data.request.id };
  return null;
}

/** One open request to cancel: conditional on the state it leaves, with its audit row. */
export interface RequestCancellation {
  id: string;
  from: RequestRow['status'];
  audit: AuditEntry;
}

/** What cancelling a task's approvals writes. */
export interface TaskCancellation {
  actor: string | null;
  reason: string;
  /** The open requests to cancel (a decision that commits first keeps its request). */
  requests: RequestCancellation[];
  /** The task-level audit row, given the requests actually cancelled. */
  taskAudit: (cancelled: readonly string[]) => AuditEntry;
}

/** Decides the cancellation of a task's open requests for a cancel request. */
export function cancelTask(
  event: Pick<TaskCancelRequestedCloudEvent, 'id' | 'source' | 'data'>,
  taskId: string,
  open: ReadonlyArray<Pick<RequestRow, 'id' | 'status' | 'stepId' | 'planId'>>,
): TaskCancellation {
  const actor = event.data.requestedBy ?? null;
  const reason = event.data.reason ? `task cancelled: ${event.data.reason}` : 'task cancelled';
  return {
    actor,
    reason,
    requests: open
      .filter((request) => request.status === 'pending' || request.status === 'awaiting-values')
      .map((request) => ({
        id: request.id,
        from: request.status,
        audit: {
          action: 'approval.cancelled',
          subject: { type: 'step', id: request.stepId ?? request.id },
          actor,
          reason,
          data: { approvalId: request.id, taskId, planId: request.planId },
        },
      })),
    taskAudit: (cancelled) => ({
      action: TASK_CANCELLED_ACTION,
      subject: { type: 'task', id: taskId },
      actor,
      reason,
      data: { cancelled: [...cancelled], event: { source: event.source, id: event.id } },
    }),
  };
}
