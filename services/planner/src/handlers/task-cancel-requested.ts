import { PublicSubjects, TaskCancelRequestedCloudEvent } from '@tandem/contracts';
import { moveTask } from '@tandem/db';
import { findCancelTarget } from '@tandem/service-kit';
import { define } from '../consumers.js';
import { cloudEventMessageId } from '../domain/intake.js';

/**
 * Stops planning a cancelled task (`task.cancel-requested.v1`): a task still being planned is marked
 * `cancelled`, so no plan is stored for it (planning checks the status before each model call and when
 * it stores the plan). The executor publishes the task's `task.cancelled` outcome.
 */
export const taskCancelRequested = define({
  // Wire name: renaming it creates a new durable consumer.
  durable: 'planner-task-cancel-requested',
  subject: PublicSubjects.taskCancelRequested,
  schema: TaskCancelRequestedCloudEvent,
  messageId: cloudEventMessageId,
  // Staged: the task is looked up before the transaction (on its own connection, never inside it).
  async run(event, context) {
    const taskId = await findCancelTarget(context.deps.db, event.data);
    await context.commit(async (tx) => {
      if (taskId !== null) await moveTask(tx, taskId, { from: ['accepted', 'planning'], to: 'cancelled' });
    });
    if (taskId === null) context.log.warn({ eventId: event.id }, 'cancel requested for an unknown task');
  },
});
