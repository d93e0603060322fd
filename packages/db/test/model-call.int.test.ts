import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDb,
  modelCallOutcomesSince,
  recordModelCall,
  type Db,
  type ModelCallInput,
} from '../src/index.js';
import { createMigratedTestDatabase, type TestDatabase } from './helpers/test-database.js';

let database: TestDatabase;
let db: Db;

beforeAll(async () => {
  database = await createMigratedTestDatabase();
  db = createDb({ url: database.url, poolMax: 2 });
});

afterAll(async () => {
  await db.close();
  await database.drop();
});

function call(overrides: Partial<ModelCallInput> = {}): ModelCallInput {
  return {
    id: randomUUID(),
    taskId: randomUUID(),
    role: 'planning',
    model: 'planner-1',
    endpoint: '127.0.0.1:1',
    candidateId: 'planning:planner-1',
    tier: 'default',
    attempt: 1,
    fallback: false,
    promptTokens: 10,
    completionTokens: 5,
    totalTokens: 15,
    costUsd: 0.001,
    latencyMs: 120,
    outcome: 'ok',
    errorCode: null,
    idempotencyKey: null,
    ...overrides,
  };
}

describe('ModelCall', () => {
  it('stores a call with the database clock as createdAt', async () => {
    const stored = call({ errorCode: 'MODEL.TIMEOUT', outcome: 'error' });
    const before = Date.now();
    await recordModelCall(db, stored);
    const row = await db.kysely
      .selectFrom('ModelCall')
      .selectAll()
      .where('id', '=', stored.id)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ ...stored, response: null });
    expect(Math.abs(row.createdAt.getTime() - before)).toBeLessThan(5_000);
  });

  it('counts recent calls with a candidate by role, candidate and outcome', async () => {
    const candidate = `code:${randomUUID()}`;
    await recordModelCall(db, call({ role: 'code', candidateId: candidate }));
    await recordModelCall(db, call({ role: 'code', candidateId: candidate }));
    await recordModelCall(db, call({ role: 'code', candidateId: candidate, outcome: 'error' }));
    await recordModelCall(db, call({ role: 'code', candidateId: null }));
    const counts = await modelCallOutcomesSince(db, new Date(Date.now() - 60_000));
    expect(counts.filter((row) => row.candidateId === candidate).sort((a, b) => b.count - a.count)).toEqual([
      { role: 'code', candidateId: candidate, outcome: 'ok', count: 2 },
      { role: 'code', candidateId: candidate, outcome: 'error', count: 1 },
    ]);
    expect(counts.every((row) => row.candidateId !== null)).toBe(true);
    expect(await modelCallOutcomesSince(db, new Date(Date.now() + 60_000))).toEqual([]);
  });
});
