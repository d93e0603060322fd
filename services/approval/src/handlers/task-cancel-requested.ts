import { PublicSubjects, TaskCancelRequestedCloudEvent } from '@tandem/contracts';
import {
  approvalCancelTarget,
  cancelApprovalRequest,
  lockApprovalTask,
  openApprovalRequests,
} from '@tandem/db';
import { writeAudit } from '../audit.js';
import { define } from '../consumers.js';
import { cancelTargetOf, cancelTask, cloudEventMessageId } from '../domain/cancel.js';
import { requestRowOf } from '../requests.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const TASK_CANCEL_REQUESTED_CONSUMER = 'approval-task-cancel-requested';

/**
 * `task.cancel-requested` (public CloudEvent): cancels the task's waiting approvals (domain/cancel.ts):
 * every open request becomes `cancelled` with an audit row, no `approval.decided` (the executor stops
 * the task on the same request), and a task-level audit row makes plans arriving later create nothing.
 * The task is named by its id or by the CloudEvent that requested it; an unknown task is acknowledged
 * and logged, nothing else. Staged: the task is looked up before the transaction (on its own connection).
 */
export const taskCancelRequested = define({
  durable: TASK_CANCEL_REQUESTED_CONSUMER,
  subject: PublicSubjects.taskCancelRequested,
  schema: TaskCancelRequestedCloudEvent,
  messageId: cloudEventMessageId,
  async run(event, context) {
    const target = cancelTargetOf(event.data);
    const taskId = target === null ? null : await approvalCancelTarget(context.deps.db, target);
    if (taskId === null) {
      context.log.warn(
        { byTaskId: event.data.taskId ?? null, byRequest: event.data.request ?? null, source: event.source },
        'cancel requested for an unknown task; ignored',
      );
      return;
    }
    const committed = await context.commit(async (tx) => {
      await lockApprovalTask(tx, taskId);
      const decided = cancelTask(event, taskId, (await openApprovalRequests(tx, taskId)).map(requestRowOf));
      const at = new Date();
      const cancelled: string[] = [];
      for (const request of decided.requests) {
        const done = await cancelApprovalRequest(tx, {
          id: request.id,
          from: request.from,
          at,
          decidedBy: decided.actor,
          reason: decided.reason,
        });
        if (!done) continue;
        await writeAudit(tx, [request.audit]);
        cancelled.push(request.id);
      }
      await writeAudit(tx, [decided.taskAudit(cancelled)]);
      return cancelled.length;
    });
    if (committed.duplicate) {
      context.log.info({ taskId }, 'cancel request already handled');
      return;
    }
    context.deps.metrics.decisions.inc({ mode: 'human', outcome: 'cancelled' }, committed.value);
    context.log.info({ taskId, cancelled: committed.value }, 'pending approvals cancelled');
  },
});
