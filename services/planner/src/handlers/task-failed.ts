import { PublicSubjects, TaskOutcomeCloudEvent } from '@tandem/contracts';
import { recordPlanOutcome } from '@tandem/db';
import { define } from '../consumers.js';
import { planOutcomeOf } from '../domain/outcome.js';

/**
 * Stores a task's outcome (`task.failed.v1`) beside the quality score of the plan version that ran, so
 * scores can be checked against outcomes.
 */
export const taskFailed = define({
  // Wire name: renaming it creates a new durable consumer.
  durable: 'planner-task-failed',
  subject: PublicSubjects.taskFailed,
  schema: TaskOutcomeCloudEvent,
  messageId: (event) => event.id,
  handle: (tx, event) => recordPlanOutcome(tx, planOutcomeOf(event)),
});
