import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@tandem/contracts';
import { createDb, migrate, type Db } from '@tandem/db';
import { createLogger } from '@tandem/service-kit';
import { createTestDatabase, type TestDatabase } from '@tandem/testing';
import { advanceTask } from '../src/advance.js';
import type { ExecutorDeps } from '../src/deps.js';
import {
  filesOf as files,
  runOf as run,
  seedTask as seed,
  stepsOf as steps,
  type SeedStep,
} from './helpers/seed.js';

let database: TestDatabase;
let db: Db;
let deps: ExecutorDeps;
const log = createLogger({ service: 'executor-test', level: 'silent' });

beforeAll(async () => {
  database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
  db = createDb({ url: database.url, poolMax: 4 });
  const unreachable = (what: string) => () => Promise.reject(new Error(`${what} must not be called`));
  deps = {
    db,
    log,
    prefix: 'test',
    codeModel: { complete: unreachable('the code model') },
    http: { run: unreachable('http') },
    codePatterns: () => Promise.resolve([]),
    sandboxLimits: { timeoutMs: 1000, maxOutputBytes: 1024 },
    workspace: { maxFileBytes: 1024 * 1024, maxTotalBytes: 8 * 1024 * 1024, maxFiles: 100 },
    claimStaleMs: 60_000,
    maxFixAttempts: 0,
    maxReplans: 0,
    maxCodeChars: 10_000,
    earlyCancelTtlMs: 60_000,
  };
}, 120_000);

afterAll(async () => {
  await db?.close();
  await database?.drop();
}, 60_000);

async function seedTask(steps: SeedStep[], files: Record<string, string> = {}): Promise<string> {
  return (await seed(db, steps, { files })).taskId;
}

const filesOf = (taskId: string) => files(db, taskId);
const stepsOf = (taskId: string) => steps(db, taskId);
const runOf = (taskId: string) => run(db, taskId);

describe('delete_file execution', () => {
  it('deletes exactly the approved path and reports deleted: true', async () => {
    const taskId = await seedTask(
      [
        { tool: 'delete_file', arguments: { path: './reports//draft.md' }, status: 'approved' },
        { tool: 'respond', arguments: { answer: 'deleted={{steps.s1.value.deleted}}' }, status: 'approved' },
      ],
      { 'reports/draft.md': 'old', 'reports/draft.md.bak': 'keep', 'reports/final.md': 'keep' },
    );
    const otherTask = await seedTask([{ tool: 'respond', arguments: { answer: 'x' }, status: 'waiting' }], {
      'reports/draft.md': 'another task keeps its file',
    });

    await advanceTask(deps, taskId, log);

    expect(await filesOf(taskId)).toEqual(['reports/draft.md.bak', 'reports/final.md']);
    expect(await filesOf(otherTask)).toEqual(['reports/draft.md']);
    const [deleted] = await stepsOf(taskId);
    expect(deleted).toMatchObject({
      status: 'completed',
      result: { value: { path: 'reports/draft.md', deleted: true } },
    });
    const run = await runOf(taskId);
    expect(run.status).toBe('completed');
    expect(run.result).toMatchObject({ answer: 'deleted=true' });
  });

  it('completes with deleted: false when the file is not there (not an error)', async () => {
    const taskId = await seedTask(
      [
        { tool: 'delete_file', arguments: { path: 'missing.txt' }, status: 'approved' },
        { tool: 'respond', arguments: { answer: 'deleted={{steps.s1.value.deleted}}' }, status: 'approved' },
      ],
      { 'kept.txt': 'x' },
    );

    await advanceTask(deps, taskId, log);

    expect(await filesOf(taskId)).toEqual(['kept.txt']);
    const [deleted] = await stepsOf(taskId);
    expect(deleted).toMatchObject({
      status: 'completed',
      result: { value: { path: 'missing.txt', deleted: false } },
      error: null,
    });
    expect((await runOf(taskId)).result).toMatchObject({ answer: 'deleted=false' });
  });

  it('does not delete a directory: a path that is only a prefix of files deletes nothing', async () => {
    const taskId = await seedTask(
      [
        { tool: 'delete_file', arguments: { path: 'reports' }, status: 'approved' },
        { tool: 'respond', arguments: { answer: 'done' }, status: 'approved' },
      ],
      { 'reports/a.txt': 'a', 'reports/b.txt': 'b' },
    );

    await advanceTask(deps, taskId, log);

    expect(await filesOf(taskId)).toEqual(['reports/a.txt', 'reports/b.txt']);
    expect((await stepsOf(taskId))[0]?.result).toMatchObject({ value: { path: 'reports', deleted: false } });
  });

  it('waits while the delete is not approved and deletes nothing', async () => {
    const taskId = await seedTask(
      [
        { tool: 'write_file', arguments: { path: 'notes.txt', content: 'new' }, status: 'approved' },
        { tool: 'delete_file', arguments: { path: 'draft.md' }, status: 'waiting' },
        { tool: 'respond', arguments: { answer: 'done' }, status: 'approved' },
      ],
      { 'draft.md': 'old' },
    );

    await advanceTask(deps, taskId, log);

    expect(await filesOf(taskId)).toEqual(['draft.md', 'notes.txt']);
    expect((await stepsOf(taskId)).map((step) => step.status)).toEqual(['completed', 'waiting', 'approved']);
    expect((await runOf(taskId)).status).toBe('running');
  });

  it('runs in plan order with the other workspace tools in one pass', async () => {
    const taskId = await seedTask([
      { tool: 'write_file', arguments: { path: 'tmp/scratch.txt', content: 'x' }, status: 'approved' },
      { tool: 'delete_file', arguments: { path: 'tmp/scratch.txt' }, status: 'approved' },
      { tool: 'list_files', arguments: {}, status: 'approved' },
      { tool: 'respond', arguments: { answer: 'done' }, status: 'approved' },
    ]);

    await advanceTask(deps, taskId, log);

    expect(await filesOf(taskId)).toEqual([]);
    const steps = await stepsOf(taskId);
    expect(steps[1]?.result).toMatchObject({ value: { path: 'tmp/scratch.txt', deleted: true } });
    expect(steps[2]?.result).toMatchObject({ value: { files: [] } });
    expect((await runOf(taskId)).status).toBe('completed');
  });

  it('fails the step with TOOL.PATH_REJECTED for a path that leaves the workspace, deleting nothing', async () => {
    // Plans are validated before they are stored; a path made by a reference is only known now.
    const taskId = await seedTask(
      [
        { tool: 'read_file', arguments: { path: 'to-delete.txt' }, status: 'approved' },
        {
          tool: 'delete_file',
          arguments: { path: '{{steps.s1.value.content}}' },
          approvedArguments: { path: '../other/secret.txt' },
          status: 'approved',
        },
        { tool: 'respond', arguments: { answer: 'done' }, status: 'approved' },
      ],
      { 'to-delete.txt': '../other/secret.txt', 'other/secret.txt': 'x' },
    );

    await advanceTask(deps, taskId, log);

    expect(await filesOf(taskId)).toEqual(['other/secret.txt', 'to-delete.txt']);
    const steps = await stepsOf(taskId);
    expect(steps[1]).toMatchObject({
      status: 'failed',
      error: { code: ErrorCodes.TOOL_PATH_REJECTED, retryable: false },
    });
    expect((await runOf(taskId)).status).toBe('failed');
  });

  it('fails an approved step with APPROVAL.UNVERIFIED when the stored decision is for other arguments', async () => {
    const taskId = await seedTask(
      [
        {
          tool: 'delete_file',
          arguments: { path: 'keep.txt' },
          approvedArguments: { path: 'scratch.txt' },
          status: 'approved',
        },
        { tool: 'respond', arguments: { answer: 'done' }, status: 'approved' },
      ],
      { 'keep.txt': 'keep', 'scratch.txt': 'x' },
    );

    await advanceTask(deps, taskId, log);

    expect(await filesOf(taskId)).toEqual(['keep.txt', 'scratch.txt']);
    const steps = await stepsOf(taskId);
    expect(steps[0]).toMatchObject({
      status: 'failed',
      error: { code: ErrorCodes.APPROVAL_UNVERIFIED, retryable: false },
    });
    expect((await runOf(taskId)).status).toBe('failed');
  });

  it('binds a step that references earlier results to its resolved values', async () => {
    // Approved for deleting `a.txt`; the reference resolves to `b.txt`: nothing is deleted.
    const taskId = await seedTask(
      [
        { tool: 'read_file', arguments: { path: 'target.txt' }, status: 'approved' },
        {
          tool: 'delete_file',
          arguments: { path: '{{steps.s1.value.content}}' },
          approvedArguments: { path: 'a.txt' },
          status: 'approved',
        },
        { tool: 'respond', arguments: { answer: 'done' }, status: 'approved' },
      ],
      { 'target.txt': 'b.txt', 'a.txt': 'a', 'b.txt': 'b' },
    );

    await advanceTask(deps, taskId, log);

    expect(await filesOf(taskId)).toEqual(['a.txt', 'b.txt', 'target.txt']);
    expect((await stepsOf(taskId))[1]).toMatchObject({
      status: 'failed',
      error: { code: ErrorCodes.APPROVAL_UNVERIFIED },
    });
  });
});
