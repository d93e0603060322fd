import { ErrorCodes, SandboxRunRequested, TandemError, type JsonValue } from '@tandem/contracts';
import { createDb, json, migrate, type Db } from '@tandem/db';
import { createLogger } from '@tandem/service-kit';
import { createTestDatabase, type TestDatabase } from '@tandem/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { advanceTask } from '../src/advance.js';
import type { CodeModel, ExecutorDeps, HttpRunner } from '../src/deps.js';
import { filesOf, outboxOf, runOf, seedTask, stepOf, stepsOf } from './helpers/seed.js';

// advanceTask on real Postgres (no NATS: the outbox rows are what it publishes), through its main paths:
// the inline pass, http_request, run_code (given and generated code, model failures), re-plans, deadlines,
// rejections, a plan replaced under it, unknown tools and rows that do not parse.

let database: TestDatabase;
let db: Db;
const log = createLogger({ service: 'executor-test', level: 'silent' });

/** What the fake code model and HTTP runner were asked, and what they answer next. */
const calls = { model: [] as string[], http: [] as Array<Record<string, JsonValue>> };
let modelAnswer: () => Promise<{ content: string | null }>;
let httpAnswer: () => Promise<JsonValue>;

const codeModel: CodeModel = {
  complete: (request) => {
    calls.model.push(request.idempotencyKey);
    return modelAnswer();
  },
};
const http: HttpRunner = {
  run: (input) => {
    calls.http.push(input.arguments);
    return httpAnswer();
  },
};

function deps(overrides: Partial<ExecutorDeps> = {}): ExecutorDeps {
  return {
    db,
    log,
    prefix: 'test',
    codeModel,
    http,
    codePatterns: () => Promise.resolve([]),
    sandboxLimits: { timeoutMs: 1000, maxOutputBytes: 1024 },
    workspace: { maxFileBytes: 1024, maxTotalBytes: 4096, maxFiles: 10 },
    claimStaleMs: 60_000,
    maxFixAttempts: 1,
    maxReplans: 0,
    maxCodeChars: 10_000,
    earlyCancelTtlMs: 60_000,
    ...overrides,
  };
}

beforeAll(async () => {
  database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
  db = createDb({ url: database.url, poolMax: 4 });
}, 120_000);

afterAll(async () => {
  await db?.close();
  await database?.drop();
}, 60_000);

beforeEach(() => {
  calls.model = [];
  calls.http = [];
  modelAnswer = () => Promise.reject(new Error('the code model must not be called'));
  httpAnswer = () => Promise.reject(new Error('http must not be called'));
});

function subjects(rows: Array<{ subject: string }>): string[] {
  return rows.map((row) => row.subject.replace(/^test\./, ''));
}

describe('advanceTask: inline steps', () => {
  it('runs write_file, read_file and respond in one pass and completes the task with the answer', async () => {
    const task = await seedTask(db, [
      { tool: 'write_file', arguments: { path: 'notes.txt', content: 'hello' }, status: 'approved' },
      { tool: 'read_file', arguments: { path: 'notes.txt' }, status: 'approved' },
      { tool: 'respond', arguments: { answer: 'it says {{steps.s2.value.content}}' }, status: 'approved' },
    ]);
    await advanceTask(deps(), task.taskId, log);
    const run = await runOf(db, task.taskId);
    expect(run).toMatchObject({ status: 'completed', result: { answer: 'it says hello' } });
    expect(run.finishedAt).toBeInstanceOf(Date);
    const steps = await stepsOf(db, task.taskId);
    expect(steps.map((step) => [step.status, step.attempts])).toEqual([
      ['completed', 1],
      ['completed', 1],
      ['completed', 1],
    ]);
    expect(steps[1]?.result).toEqual({
      value: { path: 'notes.txt', content: 'hello', encoding: 'utf8', size: 5 },
      stdout: '',
    });
    expect(await filesOf(db, task.taskId)).toEqual(['notes.txt']);
    expect(subjects(await outboxOf(db, task.taskId))).toEqual([
      'step.finished.v1',
      'step.finished.v1',
      'step.finished.v1',
      'task.completed.v1',
    ]);
  });

  it('fails the step and the task when a tool fails (WORKSPACE.FILE_NOT_FOUND); the steps before it stay done', async () => {
    const task = await seedTask(db, [
      { tool: 'write_file', arguments: { path: 'a.txt', content: 'a' }, status: 'approved' },
      { tool: 'read_file', arguments: { path: 'missing.txt' }, status: 'approved' },
      { tool: 'respond', arguments: { answer: 'never' }, status: 'approved' },
    ]);
    await advanceTask(deps(), task.taskId, log);
    const steps = await stepsOf(db, task.taskId);
    expect(steps.map((step) => step.status)).toEqual(['completed', 'failed', 'cancelled']);
    expect(steps[1]?.error).toMatchObject({ code: ErrorCodes.WORKSPACE_FILE_NOT_FOUND, retryable: false });
    expect(await runOf(db, task.taskId)).toMatchObject({
      status: 'failed',
      error: { code: ErrorCodes.WORKSPACE_FILE_NOT_FOUND, stepId: 's2', retryable: false },
    });
    expect(subjects(await outboxOf(db, task.taskId))).toEqual([
      'step.finished.v1',
      'step.finished.v1',
      'task.failed.v1',
    ]);
  });

  it('fails a write over the workspace caps with WORKSPACE.LIMIT and writes nothing', async () => {
    const task = await seedTask(db, [
      { tool: 'write_file', arguments: { path: 'big.txt', content: 'x'.repeat(2000) }, status: 'approved' },
    ]);
    await advanceTask(deps(), task.taskId, log);
    expect((await stepsOf(db, task.taskId))[0]).toMatchObject({
      status: 'failed',
      error: { code: ErrorCodes.WORKSPACE_LIMIT },
    });
    expect(await filesOf(db, task.taskId)).toEqual([]);
  });

  it('runs nothing of a plan that is no longer active', async () => {
    const task = await seedTask(db, [{ tool: 'respond', arguments: { answer: 'x' }, status: 'approved' }]);
    await db.kysely.updateTable('Plan').set({ status: 'superseded' }).where('id', '=', task.planId).execute();
    await advanceTask(deps(), task.taskId, log);
    expect((await stepsOf(db, task.taskId))[0]?.status).toBe('approved');
    expect((await runOf(db, task.taskId)).status).toBe('running');
    expect(await outboxOf(db, task.taskId)).toEqual([]);
  });
});

describe('advanceTask: http_request', () => {
  const get = { method: 'GET', url: 'https://example.com/data' };

  it('claims the step, sends the resolved request outside a transaction, stores the response and moves on', async () => {
    httpAnswer = async () => ({ status: 200, body: 'ok' });
    const task = await seedTask(db, [
      { tool: 'http_request', arguments: get, status: 'approved' },
      { tool: 'respond', arguments: { answer: 'got {{steps.s1.value.status}}' }, status: 'approved' },
    ]);
    await advanceTask(deps(), task.taskId, log);
    expect(calls.http).toEqual([get]);
    const steps = await stepsOf(db, task.taskId);
    expect(steps[0]).toMatchObject({
      status: 'completed',
      attempts: 1,
      result: { value: { status: 200, body: 'ok' } },
    });
    expect(await runOf(db, task.taskId)).toMatchObject({
      status: 'completed',
      result: { answer: 'got 200' },
    });
  });

  it('asks for a re-plan when the request failed for good and a re-plan is left', async () => {
    httpAnswer = async () => {
      throw new TandemError(ErrorCodes.HTTP_REQUEST_FAILED, 'connection refused');
    };
    const task = await seedTask(db, [
      { tool: 'http_request', arguments: get, status: 'approved' },
      { tool: 'respond', arguments: { answer: 'x' }, status: 'approved' },
    ]);
    await advanceTask(deps({ maxReplans: 1 }), task.taskId, log);
    expect((await stepsOf(db, task.taskId))[0]).toMatchObject({
      status: 'failed',
      error: { code: ErrorCodes.HTTP_REQUEST_FAILED, retryable: false },
    });
    expect(await runOf(db, task.taskId)).toMatchObject({ status: 'replanning', replans: 1 });
    const replan = (await outboxOf(db, task.taskId)).find(
      (row) => row.subject === 'test.task.replan-requested.v1',
    );
    expect(replan?.payload).toMatchObject({
      data: {
        taskId: task.taskId,
        failedStep: { key: 's1', tool: 'http_request', error: { code: 'HTTP.REQUEST_FAILED' } },
      },
    });
  });

  it('fails the task with the step error when no re-plan is left', async () => {
    httpAnswer = async () => {
      throw new TandemError(ErrorCodes.TOOL_URL_REJECTED, 'not allowed');
    };
    const task = await seedTask(db, [{ tool: 'http_request', arguments: get, status: 'approved' }]);
    await advanceTask(deps(), task.taskId, log);
    expect(await runOf(db, task.taskId)).toMatchObject({
      status: 'failed',
      error: { code: ErrorCodes.TOOL_URL_REJECTED, stepId: 's1' },
    });
  });

  it('never sends a request whose stored decision is for other arguments (APPROVAL.UNVERIFIED)', async () => {
    const task = await seedTask(db, [
      {
        tool: 'http_request',
        arguments: get,
        approvedArguments: { method: 'GET', url: 'https://example.com/other' },
        status: 'approved',
      },
    ]);
    await advanceTask(deps(), task.taskId, log);
    expect(calls.http).toEqual([]);
    expect((await stepsOf(db, task.taskId))[0]).toMatchObject({
      status: 'failed',
      error: { code: ErrorCodes.APPROVAL_UNVERIFIED },
    });
    expect((await runOf(db, task.taskId)).status).toBe('failed');
  });
});

describe('advanceTask: run_code', () => {
  it('sends given code to the sandbox with attempt 1 and waits for the result', async () => {
    const task = await seedTask(
      db,
      [
        {
          tool: 'run_code',
          arguments: { language: 'javascript', code: 'result = 6 * 7' },
          status: 'approved',
        },
      ],
      { input: { n: 6 }, files: { 'data.csv': 'a,b' } },
    );
    const stepId = task.stepIds[0] ?? '';
    await advanceTask(deps(), task.taskId, log);
    expect(calls.model).toEqual([]);
    expect(await stepOf(db, stepId)).toMatchObject({
      status: 'running',
      attempts: 1,
      code: 'result = 6 * 7',
    });
    const attempts = await db.kysely
      .selectFrom('StepAttempt')
      .selectAll()
      .where('stepId', '=', stepId)
      .execute();
    expect(attempts).toMatchObject([
      { attempt: 1, origin: 'given', outcome: 'running', sandboxKey: `${stepId}:1`, requests: 1 },
    ]);
    const [job] = await outboxOf(db, task.taskId);
    expect(job?.subject).toBe(`test.${SandboxRunRequested.subjectSuffix}`);
    expect(job?.payload).toMatchObject({
      data: {
        idempotencyKey: `${stepId}:1`,
        language: 'javascript',
        code: 'result = 6 * 7',
        input: { n: 6 },
        files: [{ path: 'data.csv', size: 3 }],
      },
    });
    expect((await runOf(db, task.taskId)).status).toBe('running');
  });

  it('asks the code model for a program with a spec, keyed by step and attempt', async () => {
    modelAnswer = async () => ({ content: 'Here:\n```js\nresult = 1 + 1\n```' });
    const task = await seedTask(db, [
      {
        tool: 'run_code',
        arguments: { language: 'javascript', spec: 'add one and one' },
        status: 'approved',
      },
    ]);
    const stepId = task.stepIds[0] ?? '';
    await advanceTask(deps(), task.taskId, log);
    expect(calls.model).toEqual([`code:${stepId}:1`]);
    expect(await stepOf(db, stepId)).toMatchObject({ status: 'running', code: 'result = 1 + 1' });
    const attempt = await db.kysely
      .selectFrom('StepAttempt')
      .select(['origin', 'outcome'])
      .where('stepId', '=', stepId)
      .executeTakeFirstOrThrow();
    expect(attempt).toEqual({ origin: 'generate', outcome: 'running' });
  });

  it('hands a retryable model failure back for redelivery, and fails the step with it on the last delivery', async () => {
    modelAnswer = async () => {
      throw new TandemError('MODEL.UNAVAILABLE', 'overloaded', { retryable: true });
    };
    const task = await seedTask(db, [
      { tool: 'run_code', arguments: { language: 'python', spec: 'print hi' }, status: 'approved' },
    ]);
    const stepId = task.stepIds[0] ?? '';
    await expect(advanceTask(deps(), task.taskId, log)).rejects.toMatchObject({ code: 'MODEL.UNAVAILABLE' });
    expect((await stepOf(db, stepId)).status).toBe('approved');

    await advanceTask(deps(), task.taskId, log, { lastDelivery: true });
    expect(await stepOf(db, stepId)).toMatchObject({
      status: 'failed',
      error: { code: 'MODEL.UNAVAILABLE', retryable: false },
    });
    const attempt = await db.kysely
      .selectFrom('StepAttempt')
      .select(['outcome', 'error'])
      .where('stepId', '=', stepId)
      .executeTakeFirstOrThrow();
    expect(attempt).toMatchObject({ outcome: 'generation_failed', error: { code: 'MODEL.UNAVAILABLE' } });
    // A model that is unavailable is not a plan's fault: no re-plan, the task fails.
    expect(await runOf(db, task.taskId)).toMatchObject({
      status: 'failed',
      error: { code: 'MODEL.UNAVAILABLE' },
    });
  });

  it('fails the step with CODE.GENERATION_FAILED when the model answers without code', async () => {
    modelAnswer = async () => ({ content: '   ' });
    const task = await seedTask(db, [
      { tool: 'run_code', arguments: { language: 'javascript', spec: 'x' }, status: 'approved' },
    ]);
    await advanceTask(deps(), task.taskId, log);
    expect((await stepsOf(db, task.taskId))[0]).toMatchObject({
      status: 'failed',
      error: { code: ErrorCodes.CODE_GENERATION_FAILED },
    });
  });

  it('asks for a fix of a failed attempt with its code and error, as attempt 2', async () => {
    modelAnswer = async () => ({ content: '```\nresult = 2\n```' });
    const task = await seedTask(db, [
      { tool: 'run_code', arguments: { language: 'javascript', code: 'result = oops' }, status: 'approved' },
    ]);
    const stepId = task.stepIds[0] ?? '';
    await db.kysely
      .updateTable('StepRun')
      .set({
        status: 'fixing',
        attempts: 1,
        code: 'result = oops',
        error: json({ code: 'STEP.FAILED', message: 'oops is not defined', retryable: false }),
      })
      .where('stepId', '=', stepId)
      .execute();
    await advanceTask(deps(), task.taskId, log);
    expect(calls.model).toEqual([`code:${stepId}:2`]);
    expect(await stepOf(db, stepId)).toMatchObject({ status: 'running', attempts: 2, code: 'result = 2' });
  });
});

describe('advanceTask: the task', () => {
  it('fails a task past its deadline with TASK.DEADLINE_EXCEEDED and cancels its open steps', async () => {
    const task = await seedTask(
      db,
      [{ tool: 'respond', arguments: { answer: 'late' }, status: 'approved' }],
      {
        deadline: new Date(Date.now() - 1000),
      },
    );
    await advanceTask(deps(), task.taskId, log);
    expect(await runOf(db, task.taskId)).toMatchObject({
      status: 'failed',
      error: { code: ErrorCodes.TASK_DEADLINE_EXCEEDED },
    });
    expect((await stepsOf(db, task.taskId))[0]?.status).toBe('cancelled');
    expect(subjects(await outboxOf(db, task.taskId))).toEqual(['task.failed.v1']);
  });

  it('fails a task whose step was rejected with APPROVAL.REJECTED', async () => {
    const task = await seedTask(db, [{ tool: 'respond', arguments: { answer: 'x' }, status: 'rejected' }]);
    await advanceTask(deps(), task.taskId, log);
    expect(await runOf(db, task.taskId)).toMatchObject({
      status: 'failed',
      error: { code: ErrorCodes.APPROVAL_REJECTED, stepId: 's1' },
    });
  });

  it('waits, writing nothing, while a step has no decision', async () => {
    const task = await seedTask(db, [{ tool: 'respond', arguments: { answer: 'x' }, status: 'waiting' }]);
    await advanceTask(deps(), task.taskId, log);
    expect((await runOf(db, task.taskId)).status).toBe('running');
    expect(await outboxOf(db, task.taskId)).toEqual([]);
  });

  it('does nothing for a run that is not running', async () => {
    const task = await seedTask(db, [{ tool: 'respond', arguments: { answer: 'x' }, status: 'approved' }], {
      runStatus: 'replanning',
    });
    await advanceTask(deps(), task.taskId, log);
    expect((await stepsOf(db, task.taskId))[0]?.status).toBe('approved');
  });

  it('fails a step of a tool the executor has no runner for with TOOL.UNKNOWN_FUNCTION', async () => {
    const task = await seedTask(db, [{ tool: 'launch_rocket', arguments: {}, status: 'approved' }]);
    await advanceTask(deps(), task.taskId, log);
    expect((await stepsOf(db, task.taskId))[0]).toMatchObject({
      status: 'failed',
      error: { code: ErrorCodes.TOOL_UNKNOWN_FUNCTION },
    });
    expect((await runOf(db, task.taskId)).status).toBe('failed');
  });

  it('refuses a step row whose stored result does not parse (DB.ROW_INVALID), never reading it as empty', async () => {
    const task = await seedTask(db, [{ tool: 'respond', arguments: { answer: 'x' }, status: 'completed' }]);
    await db.kysely
      .updateTable('StepRun')
      .set({ result: json('not a step result') })
      .where('taskId', '=', task.taskId)
      .execute();
    await expect(advanceTask(deps(), task.taskId, log)).rejects.toMatchObject({ code: 'DB.ROW_INVALID' });
    expect((await runOf(db, task.taskId)).status).toBe('running');
  });

  it('refuses stored arguments that are not a record (DB.ROW_INVALID)', async () => {
    const task = await seedTask(db, [{ tool: 'respond', arguments: { answer: 'x' }, status: 'approved' }]);
    await db.kysely
      .updateTable('StepRun')
      .set({ arguments: json(['edited', 'badly']) })
      .where('taskId', '=', task.taskId)
      .execute();
    await expect(advanceTask(deps(), task.taskId, log)).rejects.toMatchObject({ code: 'DB.ROW_INVALID' });
    expect((await stepsOf(db, task.taskId))[0]?.status).toBe('approved');
  });
});

describe('the status columns of the executor tables', () => {
  it('refuse values the code never writes (CHECK constraints)', async () => {
    const task = await seedTask(db, [{ tool: 'respond', arguments: { answer: 'x' }, status: 'approved' }]);
    const refused = [
      ['UPDATE "TaskRun" SET "status" = $1 WHERE "taskId" = $2', 'paused'],
      ['UPDATE "StepRun" SET "status" = $1 WHERE "taskId" = $2', 'skipped'],
      ['UPDATE "StepRun" SET "approval" = $1 WHERE "taskId" = $2', 'policy'],
    ] as const;
    for (const [statement, value] of refused)
      await expect(db.pool.query(statement, [value, task.taskId]), value).rejects.toMatchObject({
        code: '23514',
      });
    await db.pool.query('UPDATE "StepRun" SET "approval" = NULL WHERE "taskId" = $1', [task.taskId]);
    await expect(
      db.pool.query(
        `INSERT INTO "StepAttempt" ("id", "stepId", "taskId", "attempt", "origin", "outcome")
         VALUES (gen_random_uuid(), $1, $2, 1, 'guessed', 'running')`,
        [task.stepIds[0], task.taskId],
      ),
    ).rejects.toMatchObject({ code: '23514' });
    await expect(
      db.pool.query(
        `INSERT INTO "DeadLetterOutcome" ("deadLetterId", "outcome") VALUES (gen_random_uuid(), 'shrugged')`,
      ),
    ).rejects.toMatchObject({ code: '23514' });
  });
});
