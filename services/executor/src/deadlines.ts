import { randomUUID } from 'node:crypto';
import { CloudEventTypes, ErrorCodes, PublicSubjects, taskRequestRef } from '@tandem/contracts';
import { enqueueOutboxPrisma } from '@tandem/db';
import { outboxCloudEvent, type Log } from '@tandem/service-kit';
import { failTaskInTx, type AdvanceDeps } from './advance.js';

/**
 * Fails every task whose deadline passed and that has not ended (planning, waiting for a human, running a
 * sandbox job) with TASK.DEADLINE_EXCEEDED, and asks for its cancellation so a running sandbox job is
 * killed and planning stops. Safe to run from several replicas: ending a task is a conditional update.
 */
export async function sweepDeadlines(
  deps: Pick<AdvanceDeps, 'db' | 'prefix' | 'kick' | 'onTaskFinished'>,
  log: Log,
  now: Date = new Date(),
): Promise<number> {
  const due = await deps.db.prisma.$queryRaw<Array<{ id: string }>>`
    SELECT t."id"::text AS "id" FROM "Task" t LEFT JOIN "TaskRun" r ON r."taskId" = t."id"
    WHERE t."deadline" <= ${now} AND t."status" NOT IN ('failed', 'cancelled')
      AND (r."taskId" IS NULL OR r."status" IN ('running', 'replanning'))
    ORDER BY t."deadline" LIMIT 100`;
  let ended = 0;
  for (const { id } of due) {
    const task = await deps.db.prisma.task.findUnique({
      where: { id },
      select: { id: true, kind: true, agentId: true, source: true, externalId: true, deadline: true },
    });
    if (!task?.deadline) continue;
    const deadline = task.deadline;
    const failed = await deps.db.prisma.$transaction(async (tx) => {
      const run = await tx.taskRun.findUnique({ where: { taskId: id }, select: { planId: true } });
      const done = await failTaskInTx(
        tx,
        deps,
        { id: task.id, kind: task.kind, agentId: task.agentId },
        taskRequestRef(task),
        {
          code: ErrorCodes.TASK_DEADLINE_EXCEEDED,
          message: `the task's deadline ${deadline.toISOString()} passed`,
          retryable: false,
        },
        { planId: run?.planId ?? null },
      );
      if (!done) return false;
      await enqueueOutboxPrisma(
        tx,
        outboxCloudEvent({ prefix: deps.prefix, publisher: 'executor' }, PublicSubjects.taskCancelRequested, {
          specversion: '1.0',
          id: randomUUID(),
          source: '/tandem/executor/deadlines',
          type: CloudEventTypes.taskCancelRequested,
          time: now.toISOString(),
          datacontenttype: 'application/json',
          subject: id,
          data: { taskId: id, reason: 'deadline exceeded', requestedBy: 'tandem:deadline' },
        }),
      );
      return true;
    });
    if (failed) {
      ended += 1;
      deps.onTaskFinished?.('failed', task.kind);
      log.warn({ taskId: id }, 'task deadline passed');
    }
  }
  if (ended > 0) deps.kick();
  return ended;
}
