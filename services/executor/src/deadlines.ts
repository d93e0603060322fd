import { randomUUID } from 'node:crypto';
import { CloudEventTypes, ErrorCodes, PublicSubjects, taskRequestRef } from '@tandem/contracts';
import { enqueueOutbox } from '@tandem/db';
import { outboxCloudEvent, type Log } from '@tandem/service-kit';
import { advanceTask, failTaskInTx, finishStep, type AdvanceDeps } from './advance.js';

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
      await enqueueOutbox(
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

/**
 * Takes over work a crashed replica left behind, for tasks whose messages were all acknowledged:
 * - a `generating` claim older than `claimStaleMs`: the task is advanced, and the claim (which accepts a
 *   stale `generating` row) is taken over, so the code model is asked again;
 * - an `http_request` step still `running` long after the request's own timeout: the replica that sent it
 *   is gone, and the request may have had its effect, so the step fails with HTTP.REQUEST_FAILED rather
 *   than being sent again (a re-plan may follow).
 */
export async function sweepStaleSteps(
  deps: AdvanceDeps,
  log: Log,
  limits: { claimStaleMs: number; httpStaleMs: number },
  now: Date = new Date(),
): Promise<number> {
  const stale = await deps.db.prisma.stepRun.findMany({
    where: {
      OR: [
        { status: 'generating', updatedAt: { lt: new Date(now.getTime() - limits.claimStaleMs) } },
        {
          status: 'running',
          updatedAt: { lt: new Date(now.getTime() - limits.httpStaleMs) },
          step: { tool: 'http_request' },
        },
      ],
    },
    select: { stepId: true, taskId: true, status: true, step: { select: { stepKey: true, tool: true } } },
    take: 100,
  });
  let handled = 0;
  for (const row of stale) {
    if (row.status === 'running') {
      const failed = await finishStep(
        deps,
        {
          stepId: row.stepId,
          key: row.step.stepKey,
          tool: row.step.tool,
        },
        row.taskId,
        ['running'],
        {
          status: 'failed',
          error: {
            code: ErrorCodes.HTTP_REQUEST_FAILED,
            message:
              'the request was interrupted (the executor that sent it stopped); it is not sent again because it may have had its effect',
            retryable: false,
          },
        },
      );
      if (!failed) continue;
      log.warn({ taskId: row.taskId, step: row.step.stepKey }, 'interrupted http_request step failed');
    }
    handled += 1;
    await advanceTask(deps, row.taskId, log);
  }
  return handled;
}
