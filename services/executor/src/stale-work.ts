import { ErrorCodes, ErrorShape, JsonValue, SandboxRunRequested, taskRequestRef } from '@tandem/contracts';
import { enqueueOutboxPrisma, poolSql } from '@tandem/db';
import { outboxEvent, type Log } from '@tandem/service-kit';
import { z } from 'zod';
import {
  advanceTask,
  endTaskInTx,
  failTaskInTx,
  finishStep,
  replanRequestMessage,
  type AdvanceDeps,
} from './advance.js';
import { nextAction } from './domain/progress.js';
import { staleStepAction, stuckReason, type StepLeases } from './domain/stale-work.js';
import { loadRunState } from './store.js';

const RunCodeLanguage = z.object({ language: z.enum(['javascript', 'python']) });

/**
 * Takes over work a stopped replica left behind, on the step lease (`staleStepAction` has the rule per
 * tool): a stale `generating` claim is taken over by advancing the task; a lost sandbox job is requested
 * again with the same idempotency key, then failed; an interrupted `http_request` fails. Every change is
 * conditional on the row being as read, so replicas sweeping together do each thing once.
 */
export async function sweepStaleSteps(
  deps: AdvanceDeps,
  log: Log,
  leases: StepLeases,
  now: Date = new Date(),
): Promise<number> {
  const before = (ms: number) => new Date(now.getTime() - ms);
  const oldest = before(leases.leaseMs);
  // Asked first, so that queued jobs are not even read: they would crowd out the stale steps behind them.
  const sandboxDraining = await sandboxResultSince(deps, oldest);
  const stale = await deps.db.prisma.stepRun.findMany({
    where: {
      OR: [
        { status: 'generating', updatedAt: { lt: oldest } },
        {
          status: 'running',
          step: { tool: { notIn: ['run_code', 'http_request'] } },
          updatedAt: { lt: oldest },
        },
        {
          status: 'running',
          step: { tool: 'http_request' },
          updatedAt: { lt: before(leases.leaseMs + leases.httpTimeoutMs) },
        },
        ...(sandboxDraining
          ? []
          : [
              {
                status: 'running',
                step: { tool: 'run_code' },
                updatedAt: { lt: before(leases.leaseMs + leases.sandboxTimeoutMs) },
              },
            ]),
      ],
    },
    select: {
      stepId: true,
      taskId: true,
      status: true,
      attempts: true,
      updatedAt: true,
      code: true,
      arguments: true,
      step: { select: { stepKey: true, tool: true, arguments: true } },
    },
    orderBy: { updatedAt: 'asc' },
    take: 100,
  });
  let handled = 0;
  for (const row of stale) {
    const attempt =
      row.step.tool === 'run_code' && row.status === 'running'
        ? await deps.db.prisma.stepAttempt.findUnique({
            where: { stepId_attempt: { stepId: row.stepId, attempt: row.attempts } },
            select: { requests: true, sandboxKey: true, code: true },
          })
        : null;
    const action = staleStepAction(
      {
        status: row.status,
        tool: row.step.tool,
        ageMs: now.getTime() - row.updatedAt.getTime(),
        requests: attempt?.requests ?? 1,
      },
      leases,
      sandboxDraining,
    );
    const step = { stepId: row.stepId, key: row.step.stepKey, tool: row.step.tool };
    if (action.kind === 'none') continue;
    if (action.kind === 'resend') {
      const sandboxKey = attempt?.sandboxKey ?? `${row.stepId}:${row.attempts}`;
      const args = RunCodeLanguage.safeParse(row.arguments ?? row.step.arguments);
      const resent = await deps.db.prisma.$transaction(async (tx) => {
        const claimed = await tx.stepRun.updateMany({
          where: { stepId: row.stepId, status: 'running', attempts: row.attempts, updatedAt: row.updatedAt },
          data: { updatedAt: now },
        });
        if (claimed.count === 0) return false;
        await tx.stepAttempt.updateMany({
          where: { stepId: row.stepId, attempt: row.attempts },
          data: { requests: { increment: 1 } },
        });
        const task = await tx.task.findUniqueOrThrow({ where: { id: row.taskId }, select: { input: true } });
        const input = JsonValue.safeParse(task.input ?? null);
        const files = await tx.workspaceFile.findMany({
          where: { taskId: row.taskId },
          select: { path: true, sha256: true, size: true },
          orderBy: { path: 'asc' },
        });
        await enqueueOutboxPrisma(
          tx,
          outboxEvent(
            { prefix: deps.prefix, publisher: 'executor' },
            SandboxRunRequested,
            {
              idempotencyKey: sandboxKey,
              taskId: row.taskId,
              stepId: row.stepId,
              language: args.success ? args.data.language : 'javascript',
              code: attempt?.code ?? row.code ?? '',
              input: input.success ? input.data : null,
              limits: deps.sandboxLimits,
              files,
            },
            { correlationId: row.taskId, causationId: null },
          ).message,
        );
        return true;
      });
      if (resent) {
        handled += 1;
        deps.kick();
        log.warn(
          { taskId: row.taskId, step: step.key, sandboxKey, requests: (attempt?.requests ?? 1) + 1 },
          'sandbox job not answered within its lease; requested again with the same idempotency key',
        );
      }
      continue;
    }
    if (action.kind === 'fail') {
      const failed = await finishStep(deps, step, row.taskId, ['running'], {
        status: 'failed',
        error: action.error,
      });
      if (!failed) continue;
      if (row.step.tool === 'run_code') {
        await deps.db.prisma.stepAttempt.updateMany({
          where: { stepId: row.stepId, attempt: row.attempts, outcome: 'running' },
          data: { outcome: 'lease_expired', finishedAt: now },
        });
      }
      log.warn({ taskId: row.taskId, step: step.key, code: action.error.code }, 'stale running step failed');
    }
    handled += 1;
    try {
      await advanceTask(deps, row.taskId, log);
    } catch (error) {
      log.warn({ err: error, taskId: row.taskId }, 'could not advance a task after its stale step');
    }
  }
  return handled;
}

/** Whether any sandbox result was stored since `since` (the newest finished sandbox attempt). */
async function sandboxResultSince(deps: Pick<AdvanceDeps, 'db'>, since: Date): Promise<boolean> {
  const newest = await deps.db.prisma.stepAttempt.aggregate({
    _max: { finishedAt: true },
    where: { outcome: { notIn: ['running', 'generation_failed', 'lease_expired'] } },
  });
  const at = newest._max.finishedAt;
  return at !== null && at.getTime() >= since.getTime();
}

/**
 * Ends tasks that have not ended and have nothing left that could move them on, with TASK.STUCK:
 * - a `running` run quiet (run and steps unchanged) for `quietMs`, that `advanceTask` cannot move and
 *   that has no step out and no decision still to come (`stuckReason`);
 * - a `planned` task with no run, quiet for `quietMs`, whose `plan.proposed` is neither in the planner's
 *   outbox nor waiting in the executor's consumer: the plan never reached the executor. A task the
 *   planner failed or cancelled the same way ends with the planner's error, or `cancelled`.
 * A task with a message still in an outbox is never judged, and the sweep runs only while the executor's
 * consumers have nothing undelivered (`backlog`), so a message that is merely late is never mistaken for
 * a lost one. Replica-safe: ending a task is a conditional update.
 */
export async function sweepStuckTasks(
  deps: AdvanceDeps,
  log: Log,
  options: { quietMs: number; backlog: () => Promise<number> },
): Promise<number> {
  const quiet = options.quietMs;
  const running = await deps.db.prisma.$queryRaw<Array<{ taskId: string }>>`
    SELECT r."taskId"::text AS "taskId" FROM "TaskRun" r
     WHERE r."status" = 'running' AND r."updatedAt" < (now() AT TIME ZONE 'UTC') - ${quiet}::int * interval '1 millisecond'
       AND NOT EXISTS (SELECT 1 FROM "StepRun" s WHERE s."taskId" = r."taskId"
             AND (s."status" IN ('generating', 'running')
                  OR s."updatedAt" >= (now() AT TIME ZONE 'UTC') - ${quiet}::int * interval '1 millisecond'))
       AND NOT EXISTS (SELECT 1 FROM "Outbox" o WHERE o."publisher" IN ('planner', 'approval', 'executor', 'sandbox-runner')
                         AND o."publishedAt" IS NULL AND o."deadLetteredAt" IS NULL AND o."payload"->'data'->>'taskId' = r."taskId"::text)
     ORDER BY r."updatedAt" LIMIT 50`;
  const unplanned = await deps.db.prisma.$queryRaw<Array<{ taskId: string; status: string; error: unknown }>>`
    SELECT t."id"::text AS "taskId", t."status", t."error" FROM "Task" t
     WHERE t."status" IN ('planned', 'failed', 'cancelled') AND t."updatedAt" < (now() AT TIME ZONE 'UTC') - ${quiet}::int * interval '1 millisecond'
       AND NOT EXISTS (SELECT 1 FROM "TaskRun" r WHERE r."taskId" = t."id")
       AND NOT EXISTS (SELECT 1 FROM "Outbox" o WHERE o."publisher" IN ('planner', 'approval', 'executor', 'sandbox-runner')
                         AND o."publishedAt" IS NULL AND o."deadLetteredAt" IS NULL
                         AND o."payload"->'data'->>'taskId' = t."id"::text)
     ORDER BY t."updatedAt" LIMIT 50`;
  // Only when there is something to judge: the backlog costs a request per consumer.
  if (running.length + unplanned.length === 0 || (await options.backlog()) > 0) return 0;
  let ended = 0;
  for (const { taskId } of running) {
    try {
      await advanceTask(deps, taskId, log);
    } catch (error) {
      log.warn({ err: error, taskId }, 'could not advance a quiet task; not judging it this time');
      continue;
    }
    const state = await loadRunState(poolSql(deps.db), taskId);
    const run = await deps.db.prisma.taskRun.findUnique({ where: { taskId }, select: { status: true } });
    if (run?.status !== 'running') continue;
    const reason = stuckReason(state);
    if (reason === null) {
      // Still waiting for something (a human, most often): judged again after another quiet period, so
      // the oldest waiting tasks do not keep the sweep from the others.
      await deps.db.prisma.$executeRaw`
        UPDATE "TaskRun" SET "updatedAt" = (now() AT TIME ZONE 'UTC') WHERE "taskId" = ${taskId}::uuid AND "status" = 'running'`;
      continue;
    }
    if (await failStuck(deps, taskId, `the task cannot move on: ${reason}`, state?.plan.id ?? null)) {
      ended += 1;
      log.warn({ taskId, reason }, 'stuck task failed');
    }
  }
  for (const { taskId, status, error } of unplanned) {
    // The planner's outcome (a plan, plan.failed, a cancel) was stored but never reached the executor.
    const planned = ErrorShape.safeParse(error);
    const outcome: Parameters<typeof endTaskInTx>[4] =
      status === 'cancelled'
        ? { status: 'cancelled', reason: 'cancelled while it was being planned', requestedBy: null }
        : status === 'failed' && planned.success
          ? { status: 'failed', error: { ...planned.data, retryable: false } }
          : {
              status: 'failed',
              error: {
                code: ErrorCodes.TASK_STUCK,
                message:
                  status === 'planned'
                    ? 'the task was planned but its plan never reached the executor'
                    : 'planning ended but its outcome never reached the executor',
                retryable: false,
              },
            };
    if (await endUnrun(deps, taskId, outcome)) {
      ended += 1;
      log.warn({ taskId, status, outcome: outcome.status }, 'task ended: its planning outcome never arrived');
    }
  }
  if (ended > 0) deps.kick();
  return ended;
}

async function endUnrun(
  deps: AdvanceDeps,
  taskId: string,
  outcome: Parameters<typeof endTaskInTx>[4],
): Promise<boolean> {
  const task = await deps.db.prisma.task.findUnique({
    where: { id: taskId },
    select: { id: true, kind: true, agentId: true, source: true, externalId: true },
  });
  if (!task) return false;
  const ended = await deps.db.prisma.$transaction((tx) =>
    endTaskInTx(
      tx,
      deps,
      { id: task.id, kind: task.kind, agentId: task.agentId },
      taskRequestRef(task),
      outcome,
      {
        planId: null,
      },
    ),
  );
  if (ended) deps.onTaskFinished?.(outcome.status, task.kind);
  return ended;
}

async function failStuck(
  deps: AdvanceDeps,
  taskId: string,
  message: string,
  planId: string | null,
): Promise<boolean> {
  const task = await deps.db.prisma.task.findUnique({
    where: { id: taskId },
    select: { id: true, kind: true, agentId: true, source: true, externalId: true },
  });
  if (!task) return false;
  const failed = await deps.db.prisma.$transaction((tx) =>
    failTaskInTx(
      tx,
      deps,
      { id: task.id, kind: task.kind, agentId: task.agentId },
      taskRequestRef(task),
      { code: ErrorCodes.TASK_STUCK, message, retryable: false },
      { planId },
    ),
  );
  if (failed) deps.onTaskFinished?.('failed', task.kind);
  return failed;
}

/**
 * Asks again for a re-plan that did not come back within the planning lease: a `replanning` run whose
 * row and whose task (the planner renews the task's row while it plans) are older than `leaseMs`. The
 * request is rebuilt from the run's state (the failed step and its error, the completed steps); the
 * planner makes at most one new version (a superseded plan is never re-planned).
 */
export async function sweepStaleReplanning(
  deps: AdvanceDeps,
  log: Log,
  options: { leaseMs: number },
): Promise<number> {
  const lease = options.leaseMs;
  const stale = await deps.db.prisma.$queryRaw<Array<{ taskId: string }>>`
    SELECT r."taskId"::text AS "taskId" FROM "TaskRun" r JOIN "Task" t ON t."id" = r."taskId"
     WHERE r."status" = 'replanning'
       AND r."updatedAt" < (now() AT TIME ZONE 'UTC') - ${lease}::int * interval '1 millisecond'
       AND t."updatedAt" < (now() AT TIME ZONE 'UTC') - ${lease}::int * interval '1 millisecond'
     ORDER BY r."updatedAt" LIMIT 50`;
  let asked = 0;
  for (const { taskId } of stale) {
    const state = await loadRunState(poolSql(deps.db), taskId);
    if (state === null) continue;
    const action = nextAction(state.steps, state.dependsOn);
    const failed =
      action.kind === 'fail' ? state.steps.find((step) => step.key === action.error.stepId) : undefined;
    if (action.kind !== 'fail' || failed === undefined) continue;
    const error = action.error;
    const sent = await deps.db.prisma.$transaction(async (tx) => {
      const claimed = await tx.$executeRaw`
        UPDATE "TaskRun" SET "updatedAt" = (now() AT TIME ZONE 'UTC')
         WHERE "taskId" = ${taskId}::uuid AND "status" = 'replanning' AND "planId" = ${state.plan.id}::uuid
           AND "updatedAt" < (now() AT TIME ZONE 'UTC') - ${lease}::int * interval '1 millisecond'`;
      if (claimed === 0) return false;
      await enqueueOutboxPrisma(tx, replanRequestMessage(deps, state, failed, error));
      return true;
    });
    if (sent) {
      asked += 1;
      log.warn({ taskId, step: failed.key }, 're-plan not answered within the planning lease; asked again');
    }
  }
  if (asked > 0) deps.kick();
  return asked;
}
