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

// Issue 12, item 6: a planner killed mid-plan left its task in `planning` until the planner's 10-minute
// ack wait brought the message back. Now planning holds a lease on the task (TANDEM_PLANNING_LEASE_MS,
// renewed while the model works), and a planner takes over a task whose lease ran out.

let database: TestDatabase;
let runtime: ServiceRuntime;
let natsUrl: string;
let prefix: string;
/** Idempotency keys of every planning-model call, in order. */
const calls: string[] = [];
let modelDelayMs = 0;

const planningModel: PlanningModel = {
  complete: async (request) => {
    calls.push(request.idempotencyKey);
    if (modelDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, modelDelayMs));
    return {
      content: null,
      toolCalls: [{ id: randomUUID(), name: 'respond', arguments: JSON.stringify({ answer: 'planned' }) }],
      model: 'test-model',
      usage: { totalTokens: 1 },
      costUsd: 0,
    };
  },
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
    TANDEM_PLANNING_LEASE_MS: '1000',
    TANDEM_PLANNING_SWEEP_MS: '200',
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

async function seedTask(status: 'accepted' | 'planning', updatedAgoSeconds: number): Promise<string> {
  const taskId = randomUUID();
  const { db } = runtime;
  await db.kysely
    .insertInto('Task')
    .values({
      id: taskId,
      source: HTTP_TASK_SOURCE,
      externalId: `auto:${taskId}`,
      requestHash: 'test',
      goal: 'say planned',
      status,
      correlationId: taskId,
      createdAt: new Date(),
      // The lease's age (this host's clock is the database's: both run here).
      updatedAt: new Date(Date.now() - updatedAgoSeconds * 1000),
    })
    .execute();
  return taskId;
}

async function storedTask(taskId: string) {
  return runtime.db.kysely.selectFrom('Task').selectAll().where('id', '=', taskId).executeTakeFirstOrThrow();
}

describe('stale planning', () => {
  it('is taken over when the planner that held it stopped', async () => {
    // A planner set the task `planning`, then was killed; its task.accepted waits out the ack wait elsewhere.
    const taskId = await seedTask('planning', 60);
    await waitFor(async () => (await plansOf(runtime.db, taskId)).length === 1, {
      timeoutMs: 10_000,
      description: 'the stale planning taken over',
    });
    const task = await storedTask(taskId);
    expect(task.status).toBe('planned');
    const proposed = (await outboxRows(runtime.db)).filter((row) => row.publisher === 'planner');
    expect(
      proposed.filter(
        (row) => row.subject.endsWith('.plan.proposed.v1') && JSON.stringify(row.payload).includes(taskId),
      ),
    ).toHaveLength(1);
  }, 30_000);

  it('is not taken over while the planner holding it is alive, however long the model takes', async () => {
    modelDelayMs = 3000;
    try {
      const taskId = await seedTask('accepted', 0);
      const task = await storedTask(taskId);
      const { bus } = runtime;
      await bus.publishEvent(
        TaskAccepted,
        createEnvelope(
          TaskAccepted,
          {
            taskId,
            request: taskRequestRef(task),
            goal: task.goal,
            kind: task.kind,
            agentId: null,
          },
          { correlationId: taskId },
        ),
      );
      await waitFor(async () => (await plansOf(runtime.db, taskId)).length === 1, {
        timeoutMs: 15_000,
        description: 'the task planned',
      });
      // Two more leases: nothing else plans it.
      await new Promise((resolve) => setTimeout(resolve, 2000));
      expect(await plansOf(runtime.db, taskId)).toHaveLength(1);
      expect(calls.filter((key) => key.includes(taskId))).toHaveLength(1);
    } finally {
      modelDelayMs = 0;
    }
  }, 30_000);
});

describe('a cancel that came before its task', () => {
  it('keeps the planner from planning the task at all', async () => {
    const taskId = await seedTask('accepted', 0);
    // What the executor keeps for a cancel whose task was not stored yet (EarlyCancel, executor's table).
    await runtime.db.kysely
      .insertInto('EarlyCancel')
      .values({ id: randomUUID(), taskId, expiresAt: new Date(Date.now() + 60_000) })
      .execute();
    const task = await storedTask(taskId);
    await runtime.bus.publishEvent(
      TaskAccepted,
      createEnvelope(
        TaskAccepted,
        { taskId, request: taskRequestRef(task), goal: task.goal, kind: task.kind, agentId: null },
        { correlationId: taskId },
      ),
    );
    await waitFor(async () => (await storedTask(taskId)).status === 'cancelled', {
      timeoutMs: 10_000,
      description: 'the task marked cancelled by the planner',
    });
    expect(calls.filter((key) => key.includes(taskId))).toEqual([]);
    expect(await plansOf(runtime.db, taskId)).toEqual([]);
  }, 30_000);
});
