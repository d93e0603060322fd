import { ErrorCodes, TandemError, type TaskRequestedCloudEvent } from '@tandem/contracts';
import { markProcessedSql, type Db } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { proveSource, type SourceSecrets } from '../domain/source-proof.js';
import { HTTP_SOURCE, acceptTask } from '../tasks.js';

/** Consumer name of the intake handler (wire name: renaming it creates a new durable consumer). */
export const INTAKE_CONSUMER = 'planner-intake';

/** The message id of a CloudEvent submission: its idempotency key, unambiguous for any source and id. */
export function cloudEventMessageId(event: { source: string; id: string }): string {
  return `ce:${JSON.stringify([event.source, event.id])}`;
}

/**
 * Accepts a task submitted as a CloudEvent. `source` + `id` is the idempotency key, kept in Postgres:
 * the same event twice makes one task; the same key with other data throws TASK.IDEMPOTENCY_CONFLICT,
 * which the bus dead-letters. An event from a source with signing secrets must carry a valid
 * `tandemsig` (else TASK.SOURCE_UNPROVEN, dead-lettered); its task is then `submittedBy: source:<source>`.
 */
export async function handleTaskRequested(
  deps: { db: Db; prefix: string; kick: () => void; sourceSecrets: SourceSecrets },
  event: TaskRequestedCloudEvent,
  context: { messageId: string; log: Log; json: unknown },
): Promise<void> {
  if (event.source === HTTP_SOURCE) {
    throw new TandemError(
      ErrorCodes.TASK_RESERVED_SOURCE,
      `CloudEvent source "${HTTP_SOURCE}" is reserved for HTTP submissions`,
    );
  }
  // The signature covers the event as published (before the schema trimmed or dropped anything).
  const submittedBy = proveSource(event, context.json, deps.sourceSecrets);
  const result = await acceptTask(
    deps.db,
    {
      source: event.source,
      externalId: event.id,
      request: { source: event.source, id: event.id },
      data: event.data,
      submittedBy,
    },
    {
      prefix: deps.prefix,
      causationId: event.id,
      beforeCommit: async (sql) => {
        await markProcessedSql(sql, INTAKE_CONSUMER, context.messageId);
      },
    },
  );
  if (result.created) deps.kick();
  context.log.info(
    { taskId: result.taskId, source: event.source, proven: submittedBy !== null, created: result.created },
    result.created ? 'task accepted' : 'duplicate task request',
  );
}
