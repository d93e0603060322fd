import { randomUUID } from 'node:crypto';
import { HTTP_TASK_SOURCE, TaskAccepted, createEnvelope, taskRequestRef } from '@tandem/contracts';
import { migrate } from '@tandem/db';
import { createLogger, createServiceRuntime, parseConfig, type ServiceRuntime } from '@tandem/service-kit';
import {
  cleanupNatsPrefix,
  createTestDatabase,
  createTestPrefix,
  findNats,
  waitFor,
  type TestDatabase,
} from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPlanner } from '../src/app.js';
import { PlannerConfig } from '../src/config.js';
import type { PlanningModel } from '../src/planning-loop.js';
import { outboxRows, plansOf } from './helpers/rows.js';

// Issue 12, item 2 on the planner's path: Postgres refuses NUL (and lone surrogates) in jsonb, so a model
// whose plan arguments carry one made the Plan insert fail on every delivery, and the task never got a plan.

let database: TestDatabase;
let runtime: ServiceRuntime;
let natsUrl: string;
let prefix: string;

const UNSAFE = 'before\u0000after end';

const planningModel: PlanningModel = {
  complete: async () => ({
    content: null,
    toolCalls: [
      {
        id: randomUUID(),
        name: 'write_file',
        arguments: JSON.stringify({ path: 'notes.txt', content: UNSAFE }),
      },
      { id: randomUUID(), name: 'respond', arguments: JSON.stringify({ answer: `done ${UNSAFE} \ud800` }) },
    ],
    model: 'test-model',
    usage: { totalTokens: 1 },
    costUsd: 0,
  }),
};

beforeAll(async () => {
  natsUrl = (await findNats()).url;
  prefix = createTestPrefix();
  database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
  const config = parseConfig(PlannerConfig, {
    DATABASE_URL: database.url,
    NATS_URL: natsUrl,
    TANDEM_SUBJECT_PREFIX: prefix,
    TANDEM_DB_POOL_MAX: '8',
    TANDEM_LEARNING_QUERY_TIMEOUT_MS: '10',
    TANDEM_MAX_DELIVER: '2',
  });
  const log = createLogger({ service: 'planner', level: process.env['LOG_LEVEL'] ?? 'silent' });
  runtime = await createServiceRuntime({ service: 'planner', config, log });
  await createPlanner({ runtime, config, planningModel });
  await runtime.listen(0, '127.0.0.1');
}, 120_000);

afterAll(async () => {
  await runtime?.stop();
  if (prefix) await cleanupNatsPrefix(natsUrl, prefix);
  await database?.drop();
}, 60_000);

describe('a plan whose arguments hold text Postgres refuses', () => {
  it('is stored and proposed with that text made safe (U+FFFD), not retried until dead-lettered', async () => {
    const taskId = randomUUID();
    const { db } = runtime;
    const now = new Date();
    const task = {
      id: taskId,
      source: HTTP_TASK_SOURCE,
      externalId: `auto:${taskId}`,
      requestHash: 'test',
      goal: 'write the notes',
      kind: 'general',
      status: 'accepted' as const,
      correlationId: taskId,
      createdAt: now,
      updatedAt: now,
    };
    await db.kysely.insertInto('Task').values(task).execute();
    await runtime.bus.publishEvent(
      TaskAccepted,
      createEnvelope(
        TaskAccepted,
        { taskId, request: taskRequestRef(task), goal: task.goal, kind: task.kind, agentId: null },
        { correlationId: taskId },
      ),
    );
    await waitFor(async () => (await plansOf(db, taskId)).length === 1, {
      timeoutMs: 20_000,
      description: 'the plan stored',
    });
    const [plan] = await plansOf(db, taskId);
    const steps = await db.kysely
      .selectFrom('PlanStep')
      .selectAll()
      .where('planId', '=', plan?.id ?? '')
      .execute();
    expect(JSON.stringify(steps)).toContain('before\ufffdafter end');
    const proposed = await outboxRows(db, '.plan.proposed.v1');
    const event = proposed.find(
      (row) => row.publisher === 'planner' && JSON.stringify(row.payload).includes(taskId),
    );
    expect(JSON.stringify(event?.payload)).toContain('before\ufffdafter end');
    expect(await db.kysely.selectFrom('DeadLetter').select('id').execute()).toEqual([]);
  }, 40_000);
});
