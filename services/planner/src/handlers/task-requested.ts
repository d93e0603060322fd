import { ErrorCodes, PublicSubjects, TandemError, TaskRequestedCloudEvent } from '@tandem/contracts';
import { define } from '../consumers.js';
import { cloudEventMessageId } from '../domain/intake.js';
import { proveSource } from '../domain/source-proof.js';
import { HTTP_SOURCE, acceptTaskIn } from '../tasks.js';

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
  async handle(tx, event, context) {
    if (event.source === HTTP_SOURCE) {
      throw new TandemError(
        ErrorCodes.TASK_RESERVED_SOURCE,
        `CloudEvent source "${HTTP_SOURCE}" is reserved for HTTP submissions`,
      );
    }
    // The signature covers the event as published (before the schema trimmed or dropped anything).
    const submittedBy = proveSource(event, context.json, context.deps.sourceSecrets);
    const result = await acceptTaskIn(
      tx,
      {
        source: event.source,
        externalId: event.id,
        request: { source: event.source, id: event.id },
        data: event.data,
        submittedBy,
      },
      { prefix: context.deps.prefix, causationId: event.id },
    );
    return { ...result, proven: submittedBy !== null };
  },
  async after(committed, event, context) {
    context.deps.onRequested?.();
    if (committed.duplicate) {
      context.log.info({ source: event.source }, 'duplicate task request');
      return;
    }
    const { taskId, created, proven } = committed.value;
    context.log.info(
      { taskId, source: event.source, proven, created },
      created ? 'task accepted' : 'duplicate task request',
    );
  },
});
