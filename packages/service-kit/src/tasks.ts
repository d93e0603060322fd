import type { TaskCancelRequestedData } from '@tandem/contracts';
import { taskIdById, taskIdByRequest, type Db } from '@tandem/db';

/**
 * The task a cancel request names: by Tandem's id, or by the CloudEvent that requested it (its source
 * and id are the task's idempotency key). Null when no such task exists.
 */
export async function findCancelTarget(
  db: Pick<Db, 'kysely'>,
  data: TaskCancelRequestedData,
): Promise<string | null> {
  if (data.taskId !== undefined) return taskIdById(db, data.taskId);
  if (data.request === undefined) return null;
  return taskIdByRequest(db, { source: data.request.source, externalId: data.request.id });
}
