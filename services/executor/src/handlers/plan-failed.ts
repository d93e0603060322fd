import { PlanFailed } from '@tandem/contracts';
import { define } from '../consumers.js';
import { failTaskInTx } from '../outcomes.js';

/** `plan.failed`: turns a planning failure into the task's `task.failed` outcome (the executor owns outcomes). */
export const planFailed = define({
  // Wire name: renaming it creates a new durable consumer.
  durable: 'executor-plan-failed',
  event: PlanFailed,
  handle(tx, envelope, context) {
    const data = envelope.data;
    return failTaskInTx(
      tx,
      context.deps,
      { id: data.taskId, kind: data.kind, agentId: data.agentId },
      data.request,
      data.error,
      {},
    );
  },
  async after(committed, envelope, context) {
    if (committed.duplicate || !committed.value) return;
    const data = envelope.data;
    context.deps.onTaskFinished?.('failed', data.kind);
    context.log.warn({ taskId: data.taskId, code: data.error.code }, 'task failed in planning');
  },
});
