import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HTTP_TASK_SOURCE, taskRequestRef } from '@tandem/contracts';
import { createDb, defaultMigrationsDir, migrate, type Db } from '@tandem/db';
import { createTestDatabase, type TestDatabase } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Migration 20261207130000_tenant_scope on rows written before it: HTTP idempotency keys get the
// submitting token's scope, and a plan editor that was a client's claim becomes a label.

const MIGRATION = '20261207130000_tenant_scope';
const TOKEN = randomUUID();

let database: TestDatabase;
let db: Db;
let before: string;

beforeAll(async () => {
  before = await mkdtemp(join(tmpdir(), 'tandem-before-tenant-scope-'));
  for (const entry of await readdir(defaultMigrationsDir, { withFileTypes: true })) {
    if (entry.isDirectory() ? entry.name < MIGRATION : true)
      await cp(join(defaultMigrationsDir, entry.name), join(before, entry.name), { recursive: true });
  }
  database = await createTestDatabase({
    migrate: async (url) => void (await migrate({ url, migrationsDir: before })),
  });
  db = createDb({ url: database.url, poolMax: 2 });
}, 60_000);

afterAll(async () => {
  await db?.close();
  await database?.drop();
  await rm(before, { recursive: true, force: true });
});

async function insertTask(values: { source: string; externalId: string; submittedBy: string | null }) {
  const id = randomUUID();
  const now = new Date();
  await db.kysely
    .insertInto('Task')
    .values({
      id,
      ...values,
      requestHash: 'h',
      goal: 'g',
      status: 'accepted',
      correlationId: id,
      createdAt: now,
      updatedAt: now,
    })
    .execute();
  return id;
}

describe(`migration ${MIGRATION}`, () => {
  it('scopes stored HTTP keys by their token and turns a claimed editor into a label', async () => {
    const keyed = await insertTask({
      source: HTTP_TASK_SOURCE,
      externalId: 'order-1',
      submittedBy: `token:${TOKEN}`,
    });
    const auto = await insertTask({
      source: HTTP_TASK_SOURCE,
      externalId: `auto:${TOKEN}`,
      submittedBy: `token:${TOKEN}`,
    });
    const unsigned = await insertTask({ source: HTTP_TASK_SOURCE, externalId: 'order-2', submittedBy: null });
    const cloudEvent = await insertTask({
      source: 'urn:billing',
      externalId: 'order-1',
      submittedBy: `token:${TOKEN}`,
    });
    const plans = { claimed: randomUUID(), token: randomUUID(), model: randomUUID() };
    for (const [version, [id, editedBy]] of Object.entries([
      [plans.claimed, 'admin'],
      [plans.token, 'token:ops'],
      [plans.model, null],
    ] as const)) {
      // Only the columns the schema had before the migration.
      await db.kysely
        .insertInto('Plan')
        .values({ id, taskId: keyed, version: Number(version) + 1, editedBy, createdAt: new Date() })
        .execute();
    }

    const result = await migrate({ url: database.url });
    expect(result.applied).toContain(MIGRATION);

    const tasks = await db.kysely
      .selectFrom('Task')
      .select(['id', 'source', 'externalId'])
      .where('id', 'in', [keyed, auto, unsigned, cloudEvent])
      .execute();
    const byId = new Map(tasks.map((task) => [task.id, task]));
    expect(byId.get(keyed)?.externalId).toBe(`token:${TOKEN}:order-1`);
    expect(taskRequestRef(byId.get(keyed) ?? { source: '', externalId: '' })).toEqual({
      idempotencyKey: 'order-1',
      tokenId: TOKEN,
    });
    expect(taskRequestRef(byId.get(auto) ?? { source: '', externalId: '' })).toEqual({
      idempotencyKey: null,
      tokenId: TOKEN,
    });
    expect(byId.get(unsigned)?.externalId).toBe('order-2');
    expect(byId.get(cloudEvent)?.externalId).toBe('order-1');

    const stored = await db.kysely.selectFrom('Plan').select(['id', 'editedBy', 'editedByLabel']).execute();
    const plan = new Map(stored.map((row) => [row.id, row]));
    expect(plan.get(plans.claimed)).toMatchObject({ editedBy: null, editedByLabel: 'admin' });
    expect(plan.get(plans.token)).toMatchObject({ editedBy: 'token:ops', editedByLabel: null });
    expect(plan.get(plans.model)).toMatchObject({ editedBy: null, editedByLabel: null });
  });
});
