import { ErrorCodes, PublicSubjects, TandemError, TaskRequestedCloudEvent } from '@tandem/contracts';
import { define } from '../consumers.js';
import { cloudEventMessageId } from '../domain/intake.js';
import { proveSource } from '../domain/source-proof.js';
import { HTTP_SOURCE, acceptTaskIn, acceptedBefore } from '../tasks.js';

/**
 * Accepts a task submitted as a CloudEvent on `task.requested.v1`. `source` + `id` is the idempotency
 * key, kept in Postgres: the same event twice makes one task; the same key with other data throws
 * TASK.IDEMPOTENCY_CONFLICT, which dead-letters the message. An event from a source with signing
 * secrets must carry a valid `tandemsig` (else TASK.SOURCE_UNPROVEN, dead-lettered); its task is then
 * `submittedBy: source:<source>`.
 */
export const taskRequested = define({
  // Wire name: renaming it creates a new durable consumer.
  durable: 'planner-intake',
  subject: PublicSubjects.taskRequested,
  schema: TaskRequestedCloudEvent,
  messageId: cloudEventMessageId,
  // Staged: a redelivery, or another event under the same key, must still be checked against the task
  // stored under that key (the inbox alone would acknowledge a conflicting event as a duplicate).
  async run(event, context) {
    const { deps } = context;
    if (event.source === HTTP_SOURCE) {
      throw new TandemError(
        ErrorCodes.TASK_RESERVED_SOURCE,
        `CloudEvent source "${HTTP_SOURCE}" is reserved for HTTP submissions`,
      );
    }
    // The signature covers the event as published (before the schema trimmed or dropped anything).
    const submittedBy = proveSource(event, context.json, deps.sourceSecrets);
    const submission = {
      source: event.source,
      externalId: event.id,
      request: { source: event.source, id: event.id },
      data: event.data,
      submittedBy,
    };
    const committed = await context.commit((tx) =>
      acceptTaskIn(tx, submission, { prefix: deps.prefix, causationId: event.id }),
    );
    const result = committed.duplicate ? await acceptedBefore(deps.db, submission) : committed.value;
    deps.onRequested?.();
    context.log.info(
      { taskId: result.taskId, source: event.source, proven: submittedBy !== null, created: result.created },
      result.created ? 'task accepted' : 'duplicate task request',
    );
  },
});
