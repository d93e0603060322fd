import { randomUUID } from 'node:crypto';
import {
  CloudEventTypes,
  PublicSubjects,
  taskRequestRef,
  type TaskCancelRequestedData,
} from '@tandem/contracts';
import { enqueueOutboxPrisma, type PrismaTx } from '@tandem/db';
import { outboxCloudEvent, type Log } from '@tandem/service-kit';
import { endTaskInTx, type AdvanceDeps } from './advance.js';

type Deps = Pick<AdvanceDeps, 'db' | 'prefix' | 'kick' | 'onTaskFinished'>;

/**
 * Keeps a cancel request whose task is not stored yet, until `ttlMs` from now, in the caller's
 * transaction: a submitter may cancel a task before Tandem has read its `task.requested` event.
 */
export async function keepEarlyCancel(
  tx: PrismaTx,
  data: TaskCancelRequestedData,
  ttlMs: number,
  now: Date = new Date(),
): Promise<void> {
  await tx.earlyCancel.create({
    data: {
      id: randomUUID(),
      taskId: data.taskId ?? null,
      source: data.request?.source ?? null,
      externalId: data.request?.id ?? null,
      reason: data.reason ?? null,
      requestedBy: data.requestedBy ?? null,
      expiresAt: new Date(now.getTime() + ttlMs),
    },
  });
}

/**
 * Ends `cancelled` every stored task that an unexpired early cancel names (only `taskId` when given),
 * before anything of it ran, and asks for its cancellation by task id so the planner stops planning and
 * the approval service its requests; then forgets expired early cancels. Replica-safe: the early cancel
 * is deleted in the transaction that ends the task, and ending a task is a conditional update.
 */
export async function applyEarlyCancels(
  deps: Deps,
  log: Log,
  options: { taskId?: string } = {},
): Promise<number> {
  const only = options.taskId ?? null;
  const matches = await deps.db.prisma.$queryRaw<Array<{ id: string; taskId: string }>>`
    SELECT e."id"::text AS "id", t."id"::text AS "taskId"
      FROM "EarlyCancel" e JOIN "Task" t ON t."id" = e."taskId"
     WHERE e."expiresAt" > (now() AT TIME ZONE 'UTC') AND (${only}::uuid IS NULL OR t."id" = ${only}::uuid)
    UNION ALL
    SELECT e."id"::text AS "id", t."id"::text AS "taskId"
      FROM "EarlyCancel" e JOIN "Task" t ON t."source" = e."source" AND t."externalId" = e."externalId"
     WHERE e."expiresAt" > (now() AT TIME ZONE 'UTC') AND (${only}::uuid IS NULL OR t."id" = ${only}::uuid)
     LIMIT 100`;
  let cancelled = 0;
  for (const match of matches) {
    const ended = await deps.db.prisma.$transaction(async (tx) => {
      const kept = await tx.earlyCancel.findUnique({ where: { id: match.id } });
      if (!kept) return null;
      await tx.earlyCancel.deleteMany({ where: { id: match.id } });
      const task = await tx.task.findUniqueOrThrow({
        where: { id: match.taskId },
        select: { id: true, kind: true, agentId: true, source: true, externalId: true },
      });
      const run = await tx.taskRun.findUnique({ where: { taskId: task.id }, select: { planId: true } });
      const done = await endTaskInTx(
        tx,
        deps,
        { id: task.id, kind: task.kind, agentId: task.agentId },
        taskRequestRef(task),
        { status: 'cancelled', reason: kept.reason, requestedBy: kept.requestedBy },
        { planId: run?.planId ?? null },
      );
      if (!done) return null;
      await enqueueOutboxPrisma(
        tx,
        outboxCloudEvent({ prefix: deps.prefix, publisher: 'executor' }, PublicSubjects.taskCancelRequested, {
          specversion: '1.0',
          id: randomUUID(),
          source: '/tandem/executor/early-cancels',
          type: CloudEventTypes.taskCancelRequested,
          time: new Date().toISOString(),
          datacontenttype: 'application/json',
          subject: task.id,
          data: {
            taskId: task.id,
            ...(kept.reason === null ? {} : { reason: kept.reason }),
            ...(kept.requestedBy === null ? {} : { requestedBy: kept.requestedBy }),
          },
        }),
      );
      return task;
    });
    if (ended) {
      cancelled += 1;
      deps.onTaskFinished?.('cancelled', ended.kind);
      log.info({ taskId: ended.id }, 'task cancelled by a cancel request that arrived before it');
    }
  }
  if (cancelled > 0) deps.kick();
  if (only === null) {
    await deps.db.prisma
      .$executeRaw`DELETE FROM "EarlyCancel" WHERE "expiresAt" <= (now() AT TIME ZONE 'UTC')`;
  }
  return cancelled;
}
