import { randomUUID } from 'node:crypto';
import { handleMessage } from '@tandem/bus';
import { ErrorCodes, TaskRequestedCloudEvent } from '@tandem/contracts';
import { createDb, migrate, type Db } from '@tandem/db';
import { createLogger } from '@tandem/service-kit';
import { createTestDatabase, type TestDatabase } from '@tandem/testing';
import { generateWebhookSecret, signCloudEvent } from '@tandem/webhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proveSource } from '../src/domain/source-proof.js';
import { cloudEventMessageId } from '../src/domain/intake.js';
import { taskRequested } from '../src/handlers/task-requested.js';
import { plannerDeps } from './helpers/planner-deps.js';

const SIGNING = 'urn:acme:billing';
const secret = generateWebhookSecret();
const secrets = new Map([[SIGNING, [secret]]]);
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

function cloudEvent(
  source: string,
  data: Record<string, unknown> = { goal: 'Sum the lines', agentId: 'billing-bot' },
) {
  return { specversion: '1.0', id: randomUUID(), source, type: 'tandem.task.requested', data };
}

/** Runs the intake consumer as the bus would: the schema-parsed event plus the JSON as published. */
async function submit(json: Record<string, unknown>) {
  const event = TaskRequestedCloudEvent.parse(json);
  await handleMessage(db, taskRequested, plannerDeps(db, { sourceSecrets: secrets }), 5, event, {
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
  const task = await db.kysely
    .selectFrom('Task')
    .select(['submittedBy', 'goal'])
    .where('source', '=', event.source)
    .where('externalId', '=', event.id)
    .executeTakeFirst();
  return task ?? null;
}

describe('proven CloudEvent sources', () => {
  it('records a verified signature as submittedBy source:<source>, even with whitespace the schema trims', async () => {
    const task = await submit(signCloudEvent(cloudEvent(SIGNING, { goal: '  Sum the lines  ' }), [secret]));
    expect(task).toMatchObject({ submittedBy: `source:${SIGNING}`, goal: 'Sum the lines' });
  });

  it('refuses an event of a signing source without a valid signature, and makes no task', async () => {
    const unsigned = cloudEvent(SIGNING);
    await expect(submit(unsigned)).rejects.toMatchObject({ code: ErrorCodes.TASK_SOURCE_UNPROVEN });
    const tampered = {
      ...signCloudEvent(cloudEvent(SIGNING), [secret]),
      data: { goal: 'Pay me', agentId: 'billing-bot' },
    };
    await expect(submit(tampered)).rejects.toMatchObject({ code: ErrorCodes.TASK_SOURCE_UNPROVEN });
    const foreign = signCloudEvent(cloudEvent(SIGNING), [generateWebhookSecret()]);
    await expect(submit(foreign)).rejects.toMatchObject({ code: ErrorCodes.TASK_SOURCE_UNPROVEN });
    const stored = await db.kysely
      .selectFrom('Task')
      .select('id')
      .where('source', '=', SIGNING)
      .where('externalId', 'in', [unsigned.id, tampered.id, foreign.id])
      .execute();
    expect(stored).toEqual([]);
  });

  it('accepts an event from a source without secrets as unproven (the fixed contract)', async () => {
    const task = await submit(cloudEvent('urn:acme:other'));
    expect(task).toMatchObject({ submittedBy: null });
  });

  it('treats JSON that is not an object as malformed', () => {
    expect(() => proveSource({ source: SIGNING }, ['not', 'an', 'event'], secrets)).toThrow(/malformed/);
  });
});
