import type { TaskCancelRequestedData } from '@tandem/contracts';
import type { Db } from '@tandem/db';

/**
 * The task a cancel request names: by Tandem's id, or by the CloudEvent that requested it (its source
 * and id are the task's idempotency key). Null when no such task exists.
 */
export async function findCancelTarget(db: Db, data: TaskCancelRequestedData): Promise<string | null> {
  if (data.taskId !== undefined) {
    const task = await db.prisma.task.findUnique({ where: { id: data.taskId }, select: { id: true } });
    return task?.id ?? null;
  }
  if (data.request === undefined) return null;
  const task = await db.prisma.task.findUnique({
    where: { source_externalId: { source: data.request.source, externalId: data.request.id } },
    select: { id: true },
  });
  return task?.id ?? null;
}
