import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDb,
  finishSandboxRun,
  startSandboxRun,
  transaction,
  type Db,
  type SandboxRunResult,
  type SandboxRunStart,
} from '../src/index.js';
import { createMigratedTestDatabase, type TestDatabase } from './helpers/test-database.js';

let database: TestDatabase;
let db: Db;

beforeAll(async () => {
  database = await createMigratedTestDatabase();
  db = createDb({ url: database.url, poolMax: 4 });
});

afterAll(async () => {
  await db.close();
  await database.drop();
});

function start(): SandboxRunStart {
  return {
    id: randomUUID(),
    idempotencyKey: `${randomUUID()}:1`,
    taskId: randomUUID(),
    stepId: randomUUID(),
    language: 'python',
    codeHash: 'abc',
    limits: { timeoutMs: 1000 },
  };
}

function result(overrides: Partial<SandboxRunResult> = {}): SandboxRunResult {
  return {
    outcome: 'ok',
    stdout: 'out \u0000',
    stderr: '',
    stdoutTruncated: false,
    stderrTruncated: false,
    value: { answer: 'a\u0000b' },
    exitCode: 0,
    durationMs: 5,
    peakMemoryBytes: 2 ** 40,
    filesTruncated: false,
    files: [
      { path: 'b.txt', content: new Uint8Array([1, 2, 3]), size: 3, deleted: false },
      { path: 'a\u0000.txt', size: 0, deleted: true },
    ],
    ...overrides,
  };
}

describe('the sandbox-run store', () => {
  it('starts a key once, stores its result once, and gives the stored run to a later start', async () => {
    const job = start();
    expect(await startSandboxRun(db, job, { maxAttempts: 3 })).toEqual({
      state: 'started',
      runId: job.id,
      attempt: 1,
    });
    const stored = await transaction(db, (tx) =>
      finishSandboxRun(tx, { runId: job.id, attempt: 1 }, result()),
    );
    expect(stored).toBe(true);
    // Once: a second store for the same attempt writes nothing.
    expect(await transaction(db, (tx) => finishSandboxRun(tx, { runId: job.id, attempt: 1 }, result()))).toBe(
      false,
    );
    const again = await startSandboxRun(db, { ...job, id: randomUUID() }, { maxAttempts: 3 });
    expect(again).toEqual({
      state: 'finished',
      run: {
        runId: job.id,
        attempts: 1,
        outcome: 'ok',
        errorCode: null,
        errorMessage: null,
        stdout: 'out \uFFFD',
        stderr: '',
        stdoutTruncated: false,
        stderrTruncated: false,
        filesTruncated: false,
        value: { answer: 'a\uFFFDb' },
        exitCode: 0,
        durationMs: 5,
        files: [
          { path: 'a\uFFFD.txt', size: 0, deleted: true },
          { path: 'b.txt', size: 3, deleted: false },
        ],
      },
    });
    const row = await db.kysely
      .selectFrom('SandboxRun')
      .select(['peakMemoryBytes', 'limits', 'status'])
      .where('id', '=', job.id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({
      peakMemoryBytes: String(2 ** 40),
      limits: { timeoutMs: 1000 },
      status: 'finished',
    });
    const file = await db.kysely
      .selectFrom('SandboxRunFile')
      .select('content')
      .where('runId', '=', job.id)
      .where('path', '=', 'b.txt')
      .executeTakeFirstOrThrow();
    expect([...(file.content ?? [])]).toEqual([1, 2, 3]);
  });

  it('claims a running key as the next attempt up to maxAttempts, and a dead attempt cannot store', async () => {
    const job = start();
    await startSandboxRun(db, job, { maxAttempts: 2 });
    expect(await startSandboxRun(db, job, { maxAttempts: 2 })).toEqual({
      state: 'started',
      runId: job.id,
      attempt: 2,
    });
    expect(await startSandboxRun(db, job, { maxAttempts: 2 })).toEqual({
      state: 'exhausted',
      runId: job.id,
      attempts: 2,
    });
    expect(await transaction(db, (tx) => finishSandboxRun(tx, { runId: job.id, attempt: 1 }, result()))).toBe(
      false,
    );
    expect(
      await transaction(db, (tx) =>
        finishSandboxRun(tx, { runId: job.id, attempt: 2 }, result({ value: null })),
      ),
    ).toBe(true);
    const row = await db.kysely
      .selectFrom('SandboxRun')
      .select(['value', 'attempts'])
      .where('id', '=', job.id)
      .executeTakeFirstOrThrow();
    // No result is SQL NULL, not the JSON null.
    expect(row).toEqual({ value: null, attempts: 2 });
  });

  it('gives concurrent starts of one running key distinct attempts (the row is locked while deciding)', async () => {
    const job = start();
    await startSandboxRun(db, job, { maxAttempts: 10 });
    const starts = await Promise.all(
      Array.from({ length: 3 }, () => startSandboxRun(db, { ...job, id: randomUUID() }, { maxAttempts: 10 })),
    );
    const attempts = starts.map((started) => (started.state === 'started' ? started.attempt : 0)).sort();
    expect(attempts).toEqual([2, 3, 4]);
  });

  it('refuses a status, outcome or language outside its CHECK constraint', async () => {
    const job = start();
    await startSandboxRun(db, job, { maxAttempts: 3 });
    // Values the types would refuse, written past them as a bug elsewhere could.
    for (const [column, value] of [
      ['status', 'done'],
      ['outcome', 'crashed'],
      ['language', 'ruby'],
    ] as const) {
      await expect(
        db.pool.query(`UPDATE "SandboxRun" SET "${column}" = $1 WHERE "id" = $2::uuid`, [value, job.id]),
      ).rejects.toMatchObject({ code: '23514' });
    }
    await db.pool.query(`UPDATE "SandboxRun" SET "outcome" = NULL WHERE "id" = $1::uuid`, [job.id]);
  });
});
