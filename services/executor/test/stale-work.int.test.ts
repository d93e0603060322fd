import { randomUUID } from 'node:crypto';
import { SandboxRunRequested } from '@tandem/contracts';
import { waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json } from '@tandem/db';
import { createExecutorHarness, type ExecutorHarness } from './helpers/executor-harness.js';
import { ageRun, ageStep, ageTask, outboxOf, runOf as runRow, stepOf as stepRow } from './helpers/seed.js';

// Issue 12, items 4 and 6: nothing swept a `run_code` step left `running` (a lost sandbox job), an
// interrupted `http_request` waited its timeout + 60 s, a task with nothing left to move it on stayed
// `running` for ever, and a task left `replanning` by a planner that died waited out the planner's ack
// wait. Now every tool's stale `running` step is swept on TANDEM_STEP_LEASE_MS, a task with no pending
// work ends TASK.STUCK after TANDEM_STUCK_AFTER_MS, and a stale re-plan is asked for again.

let harness: ExecutorHarness;

beforeAll(async () => {
  harness = await createExecutorHarness({
    TANDEM_STEP_LEASE_MS: '500',
    TANDEM_STEP_LEASE_RETRIES: '1',
    TANDEM_STEP_TIMEOUT_MS: '100',
    TANDEM_HTTP_TIMEOUT_MS: '100',
    TANDEM_STUCK_AFTER_MS: '1000',
    TANDEM_PLANNING_LEASE_MS: '1000',
  });
}, 120_000);

afterAll(async () => {
  await harness?.close();
}, 60_000);

const code = { language: 'javascript', code: 'result = 6 * 7' };

async function sandboxRequests(stepId: string): Promise<string[]> {
  const rows = await harness.runtime.db.kysely
    .selectFrom('Outbox')
    .select('payload')
    .where('publisher', '=', 'executor')
    .where('subject', '=', harness.runtime.bus.subject(SandboxRunRequested.subjectSuffix))
    .orderBy('seq')
    .execute();
  return rows
    .map((row) => SandboxRunRequested.envelope.safeParse(row.payload))
    .flatMap((parsed) =>
      parsed.success && parsed.data.data.stepId === stepId ? [parsed.data.data.idempotencyKey] : [],
    );
}

async function stepOf(stepId: string) {
  return stepRow(harness.runtime.db, stepId);
}

async function maybeRun(taskId: string) {
  return harness.runtime.db.kysely
    .selectFrom('TaskRun')
    .selectAll()
    .where('taskId', '=', taskId)
    .executeTakeFirst();
}

async function runOf(taskId: string) {
  return runRow(harness.runtime.db, taskId);
}

/** A run_code step `running` since long ago: its sandbox job was sent (attempt 1) and never answered. */
async function lostSandboxJob() {
  const task = await harness.seedTask([
    { tool: 'run_code', arguments: code, status: 'running' },
    { tool: 'respond', arguments: { answer: 'done' }, status: 'approved' },
  ]);
  const stepId = task.stepIds[0] ?? '';
  const { db } = harness.runtime;
  await db.kysely.updateTable('StepRun').set({ code: code.code }).where('stepId', '=', stepId).execute();
  await db.kysely
    .insertInto('StepAttempt')
    .values({
      id: randomUUID(),
      stepId,
      taskId: task.taskId,
      attempt: 1,
      origin: 'given',
      code: code.code,
      sandboxKey: `${stepId}:1`,
      outcome: 'running',
    })
    .execute();
  // Stale only once every row is in place (a sweep in between would see half a seed).
  await ageStep(db, stepId, 60_000);
  return { ...task, stepId };
}

describe('stale running steps', () => {
  it('re-requests a lost sandbox job with the same idempotency key, then fails it typed', async () => {
    const task = await lostSandboxJob();
    const resent = await waitFor(
      async () => {
        const keys = await sandboxRequests(task.stepId);
        return keys.length >= 1 ? keys : undefined;
      },
      { timeoutMs: 10_000, description: 'the sandbox job re-requested' },
    );
    expect(new Set(resent)).toEqual(new Set([`${task.stepId}:1`]));
    // Still no answer after the re-request's lease: the step fails typed and the task with it.
    const failed = await waitFor(
      async () => {
        const step = await stepOf(task.stepId);
        return step.status === 'failed' ? step : undefined;
      },
      { timeoutMs: 10_000, description: 'the lost run_code step failed' },
    );
    expect(failed.error).toMatchObject({ code: 'STEP.LEASE_EXPIRED' });
    expect((await sandboxRequests(task.stepId)).length).toBe(1);
    // The task moves on: a re-plan is asked for (TANDEM_MAX_REPLANS), or it fails.
    await waitFor(async () => ['failed', 'replanning'].includes((await runOf(task.taskId)).status), {
      timeoutMs: 10_000,
      description: 'the task moved on',
    });
  }, 60_000);

  it('fails an interrupted http_request step on the lease, not after its timeout + 60 s', async () => {
    const task = await harness.seedTask([
      {
        tool: 'http_request',
        arguments: { method: 'GET', url: 'https://example.com/' },
        status: 'running',
        updatedAgoMs: 2_000,
      },
    ]);
    const step = await waitFor(
      async () => {
        const row = await stepOf(task.stepIds[0] ?? '');
        return row.status === 'failed' ? row : undefined;
      },
      { timeoutMs: 10_000, description: 'the http_request step failed' },
    );
    expect(step.error).toMatchObject({ code: 'HTTP.REQUEST_FAILED' });
  }, 30_000);
});

describe('stuck tasks', () => {
  it('ends a running task with nothing left to move it on TASK.STUCK, and leaves a waiting one alone', async () => {
    const { db } = harness.runtime;
    // Its only step was cancelled behind the run's back: nothing will ever move the task.
    const stuck = await harness.seedTask([
      { tool: 'respond', arguments: { answer: 'x' }, status: 'cancelled' },
    ]);
    // Its decision was stored by the approval service, but the executor never got the message.
    const lostDecision = await harness.seedTask([
      { tool: 'respond', arguments: { answer: 'y' }, status: 'waiting' },
    ]);
    await db.kysely
      .updateTable('ApprovalRequest')
      .set({ status: 'approved' })
      .where('taskId', '=', lostDecision.taskId)
      .execute();
    // Waits for a human: pending work.
    const waiting = await harness.seedTask([
      { tool: 'respond', arguments: { answer: 'z' }, status: 'waiting' },
    ]);
    for (const task of [stuck, lostDecision, waiting]) await ageRun(db, task.taskId, 60_000);
    for (const task of [stuck, lostDecision]) {
      const run = await waitFor(
        async () => {
          const row = await runOf(task.taskId);
          return row.status === 'failed' ? row : undefined;
        },
        { timeoutMs: 10_000, description: 'the stuck task failed' },
      );
      expect(run.error).toMatchObject({ code: 'TASK.STUCK' });
    }
    expect((await runOf(waiting.taskId)).status).toBe('running');
  }, 60_000);

  it('ends a planned task whose plan never reached the executor TASK.STUCK', async () => {
    const { db } = harness.runtime;
    const task = await harness.seedTask(
      [{ tool: 'respond', arguments: { answer: 'x' }, status: 'waiting' }],
      {
        withRun: false,
      },
    );
    await ageTask(db, task.taskId, 60_000);
    const run = await waitFor(async () => maybeRun(task.taskId), {
      timeoutMs: 10_000,
      description: 'the task ended',
    });
    expect(run).toMatchObject({ status: 'failed', error: { code: 'TASK.STUCK' } });
  }, 30_000);
});

describe('planning outcomes that never reached the executor', () => {
  it("ends a task the planner failed or cancelled, with the planner's error, when no outcome came", async () => {
    const { db } = harness.runtime;
    const failed = await harness.seedTask(
      [{ tool: 'respond', arguments: { answer: 'x' }, status: 'waiting' }],
      {
        withRun: false,
        taskStatus: 'failed',
      },
    );
    await db.kysely
      .updateTable('Task')
      .set({
        error: json({
          code: 'PLAN.REJECTED',
          message: 'the model never made a valid plan',
          retryable: false,
        }),
      })
      .where('id', '=', failed.taskId)
      .execute();
    const cancelled = await harness.seedTask(
      [{ tool: 'respond', arguments: { answer: 'y' }, status: 'waiting' }],
      {
        withRun: false,
        taskStatus: 'cancelled',
      },
    );
    for (const task of [failed, cancelled]) await ageTask(db, task.taskId, 60_000);
    const failedRun = await waitFor(async () => maybeRun(failed.taskId), {
      timeoutMs: 10_000,
      description: 'the failed task ended',
    });
    expect(failedRun).toMatchObject({ status: 'failed', error: { code: 'PLAN.REJECTED' } });
    const cancelledRun = await waitFor(async () => maybeRun(cancelled.taskId), {
      timeoutMs: 10_000,
      description: 'the cancelled task ended',
    });
    expect(cancelledRun?.status).toBe('cancelled');
  }, 30_000);
});

describe('stale re-planning', () => {
  it('asks for the re-plan again when the planner took longer than its lease', async () => {
    const { db } = harness.runtime;
    const task = await harness.seedTask([{ tool: 'run_code', arguments: code, status: 'failed' }], {
      runStatus: 'replanning',
    });
    await db.kysely
      .updateTable('StepRun')
      .set({ error: json({ code: 'SANDBOX.ERROR', message: 'boom', retryable: false }) })
      .where('taskId', '=', task.taskId)
      .execute();
    await db.kysely
      .updateTable('TaskRun')
      .set({ replans: 1, updatedAt: new Date(Date.now() - 60_000) })
      .where('taskId', '=', task.taskId)
      .execute();
    await ageTask(db, task.taskId, 60_000);
    const request = await waitFor(
      async () => {
        const rows = await outboxOf(db, task.taskId);
        return rows.find((row) => row.subject.endsWith('.task.replan-requested.v1'));
      },
      { timeoutMs: 10_000, description: 'the re-plan asked for again' },
    );
    expect(JSON.stringify(request.payload)).toContain('SANDBOX.ERROR');
    expect((await runOf(task.taskId)).status).toBe('replanning');
  }, 30_000);
});
