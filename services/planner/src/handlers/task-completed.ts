import { PublicSubjects, TaskOutcomeCloudEvent } from '@tandem/contracts';
import { recordPlanOutcome } from '@tandem/db';
import { define } from '../consumers.js';
import { planOutcomeOf } from '../domain/outcome.js';

/**
 * Stores a task's outcome (`task.completed.v1`) beside the quality score of the plan version that ran, so
 * scores can be checked against outcomes.
 */
export const taskCompleted = define({
  // Wire name: renaming it creates a new durable consumer.
  durable: 'planner-task-completed',
  subject: PublicSubjects.taskCompleted,
  schema: TaskOutcomeCloudEvent,
  messageId: (event) => event.id,
  handle: (tx, event) => recordPlanOutcome(tx, planOutcomeOf(event)),
});
