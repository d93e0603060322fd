import { randomUUID } from 'node:crypto';
import { PublicSubjects, TaskCancelRequestedCloudEvent, taskRequestRef } from '@tandem/contracts';
import { cancelTargetOf, keepEarlyCancel, planSummary, taskOutcomeRef, taskRunOf } from '@tandem/db';
import { define } from '../consumers.js';
import { endTaskInTx } from '../outcomes.js';

/**
 * `task.cancel-requested` (a public CloudEvent): cancels a task. Steps not yet started never run (they are
 * marked cancelled), and the task ends with its own `task.cancelled` outcome, once. A running sandbox job
 * is killed by the sandbox-runner, which consumes the same request; its late result changes nothing. A
 * request for a task that is not stored yet is kept (`EarlyCancel`, for `earlyCancelTtlMs`) and applied
 * when the task arrives.
 */
export const taskCancelRequested = define({
  // Wire name: renaming it creates a new durable consumer.
  durable: 'executor-task-cancel-requested',
  subject: PublicSubjects.taskCancelRequested,
  schema: TaskCancelRequestedCloudEvent,
  // A CloudEvent is identified by its source and id together.
  messageId: (event) => `ce:${JSON.stringify([event.source, event.id])}`,
  async handle(tx, event, context) {
    const { deps } = context;
    const taskId = await cancelTargetOf(tx, event.data);
    if (taskId === null) {
      // The task may not be stored yet (the cancel overtook its task.requested): keep the request.
      await keepEarlyCancel(tx, {
        id: randomUUID(),
        taskId: event.data.taskId ?? null,
        source: event.data.request?.source ?? null,
        externalId: event.data.request?.id ?? null,
        reason: event.data.reason ?? null,
        requestedBy: event.data.requestedBy ?? null,
        expiresAt: new Date(Date.now() + deps.earlyCancelTtlMs),
      });
      return { taskId: null, cancelled: null };
    }
    const stored = await taskOutcomeRef(tx, taskId);
    if (stored === null) return { taskId, cancelled: null };
    const run = await taskRunOf(tx, taskId);
    const plan = run?.planId == null ? null : await planSummary(tx, run.planId);
    const ended = await endTaskInTx(
      tx,
      deps,
      { id: stored.id, kind: stored.kind, agentId: stored.agentId },
      taskRequestRef(stored),
      { status: 'cancelled', reason: event.data.reason ?? null, requestedBy: event.data.requestedBy ?? null },
      {
        planId: run?.planId ?? null,
        ...(plan ? { planVersion: plan.version, tools: plan.tools } : {}),
      },
    );
    return { taskId, cancelled: ended ? { kind: stored.kind } : null };
  },
  async after(committed, event, context) {
    if (committed.duplicate) return;
    const { taskId, cancelled } = committed.value;
    if (taskId === null) {
      context.log.info({ eventId: event.id }, 'cancel requested for a task not stored yet; kept for a while');
      return;
    }
    if (cancelled) {
      context.deps.onTaskFinished?.('cancelled', cancelled.kind);
      context.log.info({ taskId }, 'task cancelled');
    }
  },
});
