import { PublicSubjects, TaskOutcomeCloudEvent } from '@tandem/contracts';
import { define } from '../consumers.js';
import { outcomeMayChangeTrust } from '../domain/task-outcome.js';
import { applyTaskOutcome, reportTaskOutcome } from '../task-outcome.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const TASK_COMPLETED_CONSUMER = 'approval-task-completed';

/**
 * `task.completed` (public CloudEvent): verified outcomes earn and lose trust (domain/task-outcome.ts).
 * Each step of the task this service approved (or whose question was answered) is a success of its agent
 * in its action class, when the submitter could act as the agent. A task without an agent costs nothing.
 */
export const taskCompleted = define({
  durable: TASK_COMPLETED_CONSUMER,
  subject: PublicSubjects.taskCompleted,
  schema: TaskOutcomeCloudEvent,
  messageId: (event) => event.id,
  // An outcome that cannot change trust (a completed task without an agent) writes nothing: no inbox row.
  ignore: (event) => !outcomeMayChangeTrust(event.data),
  handle: (tx, event) => applyTaskOutcome(tx, event),
  after: reportTaskOutcome,
});
