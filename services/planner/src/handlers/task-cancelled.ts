import { PublicSubjects, TaskOutcomeCloudEvent } from '@tandem/contracts';
import { recordPlanOutcome } from '@tandem/db';
import { define } from '../consumers.js';
import { planOutcomeOf } from '../domain/outcome.js';

/**
 * Stores a task's outcome (`task.cancelled.v1`) beside the quality score of the plan version that ran, so
 * scores can be checked against outcomes.
 */
export const taskCancelled = define({
  // Wire name: renaming it creates a new durable consumer.
  durable: 'planner-task-cancelled',
  subject: PublicSubjects.taskCancelled,
  schema: TaskOutcomeCloudEvent,
  messageId: (event) => event.id,
  handle: (tx, event) => recordPlanOutcome(tx, planOutcomeOf(event)),
});
