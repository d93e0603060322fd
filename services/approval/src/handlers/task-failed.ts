import { PublicSubjects, TaskOutcomeCloudEvent } from '@tandem/contracts';
import { define } from '../consumers.js';
import { outcomeMayChangeTrust } from '../domain/task-outcome.js';
import { applyTaskOutcome, reportTaskOutcome } from '../task-outcome.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const TASK_FAILED_CONSUMER = 'approval-task-failed';

/**
 * `task.failed` (public CloudEvent): verified outcomes earn and lose trust (domain/task-outcome.ts).
 * The failing step is a failure of its agent in its action class (a sandbox limit weighs more); the other
 * steps count for nothing. An auto-approved step that failed for a safety reason is a false approval.
 */
export const taskFailed = define({
  durable: TASK_FAILED_CONSUMER,
  subject: PublicSubjects.taskFailed,
  schema: TaskOutcomeCloudEvent,
  messageId: (event) => event.id,
  // An outcome that cannot change trust (a completed task without an agent) writes nothing: no inbox row.
  ignore: (event) => !outcomeMayChangeTrust(event.data),
  handle: (tx, event) => applyTaskOutcome(tx, event),
  after: reportTaskOutcome,
});
