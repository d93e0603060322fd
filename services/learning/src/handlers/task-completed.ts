import { PublicSubjects, TaskOutcomeCloudEvent } from '@tandem/contracts';
import { define } from '../consumers.js';
import { strategyUpdated, updateStrategy } from '../strategy-update.js';

/**
 * Keeps one `strategy` pattern per kind of task (`task.completed.v1`): success and failure counts, the plan
 * shapes that worked, and provenance (the outcome events it came from).
 */
export const taskCompleted = define({
  // Wire name: renaming it creates a new durable consumer.
  durable: 'learning-task-completed',
  subject: PublicSubjects.taskCompleted,
  schema: TaskOutcomeCloudEvent,
  messageId: (event) => event.id,
  handle: (tx, event, context) => updateStrategy(tx, event, context.deps.minSuccesses),
  after: strategyUpdated,
});
