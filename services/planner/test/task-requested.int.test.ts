import { randomUUID } from 'node:crypto';
import { handleMessage } from '@tandem/bus';
import { ErrorCodes, TaskRequestedCloudEvent } from '@tandem/contracts';
import { createDb, migrate, type Db } from '@tandem/db';
import { createLogger } from '@tandem/service-kit';
import { createTestDatabase, type TestDatabase } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudEventMessageId } from '../src/domain/intake.js';
import { taskRequested } from '../src/handlers/task-requested.js';
import { plannerDeps } from './helpers/planner-deps.js';
import { outboxRows, payloadAt } from './helpers/rows.js';

// The intake consumer driven as the bus would (the framework's handleMessage), against Postgres: the
// CloudEvent's source + id is the idempotency key, whatever the inbox says.

const log = createLogger({ service: 'planner-test', level: 'silent' });
let database: TestDatabase;
let db: Db;

beforeAll(async () => {
  database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
  db = createDb({ url: database.url, poolMax: 2 });
}, 120_000);

afterAll(async () => {
  await db?.close();
  await database?.drop();
}, 60_000);

async function deliver(json: Record<string, unknown>): Promise<void> {
  const event = TaskRequestedCloudEvent.parse(json);
  await handleMessage(db, taskRequested, plannerDeps(db), 5, event, {
    messageId: cloudEventMessageId(event),
    consumer: 'test_planner-intake',
    subject: 'test.task.requested.v1',
    streamSeq: 1,
    deliveryCount: 1,
    headers: {},
    json,
    log,
    working: () => undefined,
  });
}

async function tasksOf(source: string, externalId: string) {
  return db.kysely
    .selectFrom('Task')
    .select(['id', 'goal', 'status', 'kind'])
    .where('source', '=', source)
    .where('externalId', '=', externalId)
    .execute();
}

describe('the planner-intake consumer', () => {
  const source = 'urn:acme:orders';

  it('makes one task and one task.accepted for the same event delivered twice', async () => {
    const event = {
      specversion: '1.0',
      id: randomUUID(),
      source,
      type: 'tandem.task.requested',
      data: { goal: 'Add up' },
    };
    await deliver(event);
    await deliver(event);
    const tasks = await tasksOf(source, event.id);
    expect(tasks).toMatchObject([{ goal: 'Add up', status: 'accepted', kind: 'general' }]);
    const accepted = (await outboxRows(db, 'task.accepted.v1')).filter(
      (row) => payloadAt(row.payload, ['data', 'taskId']) === tasks[0]?.id,
    );
    expect(accepted).toHaveLength(1);
  });

  it('refuses other data under a handled key for good (TASK.IDEMPOTENCY_CONFLICT), keeping the first task', async () => {
    const event = {
      specversion: '1.0',
      id: randomUUID(),
      source,
      type: 'tandem.task.requested',
      data: { goal: 'Add up' },
    };
    await deliver(event);
    await expect(deliver({ ...event, data: { goal: 'Something else entirely' } })).rejects.toMatchObject({
      code: ErrorCodes.TASK_CONFLICT,
      retryable: false,
    });
    expect(await tasksOf(source, event.id)).toMatchObject([{ goal: 'Add up' }]);
  });

  it('refuses the source reserved for HTTP submissions for good', async () => {
    const event = {
      specversion: '1.0',
      id: randomUUID(),
      source: 'urn:tandem:http',
      type: 'tandem.task.requested',
      data: { goal: 'Sneak in' },
    };
    await expect(deliver(event)).rejects.toMatchObject({
      code: ErrorCodes.TASK_RESERVED_SOURCE,
      retryable: false,
    });
    expect(await tasksOf('urn:tandem:http', event.id)).toEqual([]);
  });
});
