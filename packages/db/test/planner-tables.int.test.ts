import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  activePatterns,
  cancelledBeforeArrival,
  claimStalePlanning,
  createDb,
  ensurePattern,
  findTaskByKey,
  firstStartedStep,
  insertPlan,
  insertPlanMetrics,
  insertPlanSteps,
  insertTask,
  insertVerdictFeedback,
  loadPlanningTask,
  lockActivePlanForEdit,
  lockPattern,
  markProcessed,
  modelUseOfTask,
  moveTask,
  planState,
  readStoredTaskView,
  recordPlanOutcome,
  renewPlanningLease,
  supersedePlan,
  taskAndRunStatus,
  taskStatus,
  transaction,
  updatePattern,
  type Db,
  type NewTask,
  type RowSchema,
} from '../src/index.js';
import { createMigratedTestDatabase, type TestDatabase } from './helpers/test-database.js';

// The planner's and learning's query modules against a migrated database: conditional moves, the
// planning lease claim, parsed reads (a bad stored value is DB.ROW_INVALID), and the CHECK constraints.

let database: TestDatabase;
let db: Db;

beforeAll(async () => {
  database = await createMigratedTestDatabase();
  db = createDb({ url: database.url, poolMax: 4 });
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

function newTask(overrides: Partial<NewTask> = {}): NewTask {
  const id = randomUUID();
  return {
    id,
    source: 'urn:test',
    externalId: id,
    requestHash: 'hash',
    agentId: null,
    kind: 'general',
    goal: 'a\u0000goal',
    input: { lines: [1, 2] },
    budget: { maxCostUsd: 1 },
    preferences: null,
    deadline: new Date('2030-01-01T00:00:00.000Z'),
    submittedBy: null,
    ...overrides,
  };
}

async function storedTask(overrides: Partial<NewTask> = {}): Promise<NewTask> {
  const task = newTask(overrides);
  expect(await transaction(db, (tx) => insertTask(tx, task))).toBe(true);
  return task;
}

/** Sets a task's lease age (its updatedAt) on the database's clock. */
async function ageTask(taskId: string, seconds: number): Promise<void> {
  await sql`UPDATE "Task" SET "updatedAt" = (now() AT TIME ZONE 'UTC') - make_interval(secs => ${seconds}) WHERE "id" = ${taskId}::uuid`.execute(
    db.kysely,
  );
}

async function storedPlan(taskId: string, version = 1): Promise<string> {
  const planId = randomUUID();
  await transaction(db, async (tx) => {
    await insertPlan(tx, {
      id: planId,
      taskId,
      version,
      strategy: 'plain',
      models: ['m'],
      qualityScore: 0.9,
      attempts: 1,
      origin: 'model',
      supersedesId: null,
      editedBy: null,
      editedByLabel: null,
      estimatedCostUsd: 0,
    });
    await insertPlanSteps(tx, planId, [
      {
        id: randomUUID(),
        stepKey: 's1',
        index: 0,
        dependsOn: [],
        tool: 'respond',
        arguments: { answer: 'x' },
        riskClass: 'read',
        rationale: null,
        idempotencyKey: `${taskId}:${version}:s1`,
      },
    ]);
    await insertPlanMetrics(tx, {
      planId,
      taskId,
      stepCount: 1,
      validationErrors: 0,
      repairAttempts: 0,
      qualityScore: 0.9,
      qualityFactors: { structural: 1 },
      estimatedCostUsd: 0,
      planningMs: 5,
    });
  });
  return planId;
}

describe('Task', () => {
  it('is inserted once per idempotency key, its goal made storable, and read back parsed', async () => {
    const task = await storedTask();
    expect(await transaction(db, (tx) => insertTask(tx, { ...task, id: randomUUID() }))).toBe(false);
    expect(await findTaskByKey(db, task)).toEqual({ id: task.id, requestHash: 'hash' });
    const loaded = await loadPlanningTask(db, task.id);
    expect(loaded).toMatchObject({
      id: task.id,
      goal: 'a\uFFFDgoal',
      input: { lines: [1, 2] },
      status: 'accepted',
      budget: { maxCostUsd: 1 },
      preferences: undefined,
      processed: false,
    });
    expect(loaded?.deadline?.toISOString()).toBe('2030-01-01T00:00:00.000Z');
    expect(await loadPlanningTask(db, randomUUID())).toBeNull();
  });

  it('says in the same read whether a consumer already handled a message', async () => {
    const task = await storedTask();
    const inbox = { consumer: 'planner-planning-test', messageId: randomUUID() };
    expect((await loadPlanningTask(db, task.id, inbox))?.processed).toBe(false);
    await transaction(db, (tx) => markProcessed(tx, inbox.consumer, inbox.messageId));
    expect((await loadPlanningTask(db, task.id, inbox))?.processed).toBe(true);
  });

  it('moves only from the given states, storing an error with the move', async () => {
    const task = await storedTask();
    expect(await moveTask(db, task.id, { from: ['planning'], to: 'planned' })).toBe(false);
    expect(await moveTask(db, task.id, { from: ['accepted'], to: 'planning' })).toBe(true);
    const error = { code: 'PLAN.REJECTED', message: 'no plan', retryable: false };
    expect(
      await transaction(db, (tx) => moveTask(tx, task.id, { from: ['planning'], to: 'failed', error })),
    ).toBe(true);
    expect(await taskStatus(db, task.id)).toBe('failed');
    const stored = await db.kysely
      .selectFrom('Task')
      .select('error')
      .where('id', '=', task.id)
      .executeTakeFirst();
    expect(stored?.error).toEqual(error);
  });

  it('is a DB.ROW_INVALID read, never a default, when a stored JSON column does not match its schema', async () => {
    const task = await storedTask();
    await sql`UPDATE "Task" SET "budget" = '{"maxCostUsd": "lots"}'::jsonb WHERE "id" = ${task.id}::uuid`.execute(
      db.kysely,
    );
    await expect(loadPlanningTask(db, task.id)).rejects.toMatchObject({ code: 'DB.ROW_INVALID' });
  });

  it('refuses a status outside its CHECK constraint', async () => {
    const task = await storedTask();
    await expect(
      sql`UPDATE "Task" SET "status" = 'running' WHERE "id" = ${task.id}::uuid`.execute(db.kysely),
    ).rejects.toMatchObject({ code: '23514' });
  });
});

describe('the planning lease', () => {
  it('claims a stale planning task once, renews it, and leaves fresh and leased ones alone', async () => {
    const stale = await storedTask();
    const fresh = await storedTask();
    const accepted = await storedTask();
    await moveTask(db, stale.id, { from: ['accepted'], to: 'planning' });
    await moveTask(db, fresh.id, { from: ['accepted'], to: 'planning' });
    await ageTask(stale.id, 60);
    await ageTask(accepted.id, 60);
    const mine = [stale.id, fresh.id, accepted.id];
    const claim = async (withAccepted: boolean) =>
      (await claimStalePlanning(db, { leaseMs: 10_000, limit: 100, withAccepted })).filter((id) =>
        mine.includes(id),
      );
    expect(await claim(false)).toEqual([stale.id]);
    // The claim renewed the lease: nobody claims it again.
    expect(await claim(false)).toEqual([]);
    expect(await claim(true)).toEqual([accepted.id]);
  });

  it('is renewed only while the task is being planned or waits for approval', async () => {
    const planned = await storedTask();
    const cancelled = await storedTask();
    await moveTask(db, planned.id, { from: ['accepted'], to: 'planned' });
    await moveTask(db, cancelled.id, { from: ['accepted'], to: 'cancelled' });
    await ageTask(planned.id, 60);
    await ageTask(cancelled.id, 60);
    await transaction(db, async (tx) => {
      await renewPlanningLease(tx, planned.id);
      await renewPlanningLease(tx, cancelled.id);
    });
    const ages = await db.kysely
      .selectFrom('Task')
      .select(['id', sql<number>`extract(epoch FROM (now() AT TIME ZONE 'UTC') - "updatedAt")`.as('age')])
      .where('id', 'in', [planned.id, cancelled.id])
      .execute();
    const age = new Map(ages.map((row) => [row.id, Number(row.age)]));
    expect(age.get(planned.id)).toBeLessThan(5);
    expect(age.get(cancelled.id)).toBeGreaterThan(50);
  });
});

describe('Plan, PlanStep and PlanMetrics', () => {
  it('stores versions, supersedes the old one and locks the newest active plan', async () => {
    const task = await storedTask();
    const first = await storedPlan(task.id, 1);
    expect(await planState(db, first)).toEqual({ status: 'active', version: 1 });
    const second = await storedPlan(task.id, 2);
    await transaction(db, (tx) => supersedePlan(tx, first));
    expect(await planState(db, first)).toEqual({ status: 'superseded', version: 1 });
    expect(await transaction(db, (tx) => lockActivePlanForEdit(tx, task.id))).toEqual({
      id: second,
      version: 2,
    });
  });

  it('records the outcome beside the version that ran (the newest without one), once', async () => {
    const task = await storedTask();
    const first = await storedPlan(task.id, 1);
    const second = await storedPlan(task.id, 2);
    const at = new Date('2026-12-07T09:00:00.000Z');
    await transaction(db, (tx) =>
      recordPlanOutcome(tx, { taskId: task.id, planVersion: 1, outcome: 'failed', at }),
    );
    await transaction(db, (tx) =>
      recordPlanOutcome(tx, { taskId: task.id, planVersion: null, outcome: 'completed', at }),
    );
    await transaction(db, (tx) =>
      recordPlanOutcome(tx, { taskId: task.id, planVersion: null, outcome: 'cancelled', at }),
    );
    const rows = await db.kysely
      .selectFrom('PlanMetrics')
      .select(['planId', 'outcome', 'outcomeAt'])
      .where('taskId', '=', task.id)
      .execute();
    const byPlan = new Map(rows.map((row) => [row.planId, row]));
    expect(byPlan.get(first)?.outcome).toBe('failed');
    expect(byPlan.get(second)?.outcome).toBe('completed');
    expect(byPlan.get(second)?.outcomeAt?.toISOString()).toBe(at.toISOString());
  });

  it('reads the task view: newest plan, its steps with their runs, the run', async () => {
    const task = await storedTask();
    await storedPlan(task.id, 1);
    const planId = await storedPlan(task.id, 2);
    const view = await readStoredTaskView(db, task.id);
    expect(view).toMatchObject({
      id: task.id,
      status: 'accepted',
      run: null,
      plan: {
        id: planId,
        version: 2,
        origin: 'model',
        steps: [{ stepKey: 's1', tool: 'respond', arguments: { answer: 'x' }, riskClass: 'read', run: null }],
      },
    });
    expect(await taskAndRunStatus(db, task.id)).toEqual({ status: 'accepted', runStatus: null });
    expect(await firstStartedStep(db, planId, ['waiting', 'approved'])).toBeNull();
    expect(await readStoredTaskView(db, randomUUID())).toBeNull();
  });

  it('refuses a risk class, origin or outcome outside the CHECK constraints', async () => {
    const task = await storedTask();
    const planId = await storedPlan(task.id);
    await expect(
      sql`UPDATE "PlanStep" SET "riskClass" = 'scary' WHERE "planId" = ${planId}::uuid`.execute(db.kysely),
    ).rejects.toMatchObject({ code: '23514' });
    await expect(
      sql`UPDATE "Plan" SET "origin" = 'robot' WHERE "id" = ${planId}::uuid`.execute(db.kysely),
    ).rejects.toMatchObject({ code: '23514' });
    await expect(
      sql`UPDATE "PlanMetrics" SET "outcome" = 'done' WHERE "planId" = ${planId}::uuid`.execute(db.kysely),
    ).rejects.toMatchObject({ code: '23514' });
  });
});

describe('reads of the executor rows', () => {
  it('finds an unexpired early cancel by task id or by idempotency key, not an expired one', async () => {
    const byId = await storedTask();
    const byKey = await storedTask();
    const expired = await storedTask();
    const soon = new Date(Date.now() + 60_000);
    await db.kysely
      .insertInto('EarlyCancel')
      .values([
        { id: randomUUID(), taskId: byId.id, expiresAt: soon },
        { id: randomUUID(), source: byKey.source, externalId: byKey.externalId, expiresAt: soon },
        { id: randomUUID(), taskId: expired.id, expiresAt: new Date(Date.now() - 60_000) },
      ])
      .execute();
    expect(await cancelledBeforeArrival(db, byId)).toBe(true);
    expect(await cancelledBeforeArrival(db, byKey)).toBe(true);
    expect(await cancelledBeforeArrival(db, expired)).toBe(false);
  });

  it("sums a task's model use", async () => {
    const task = await storedTask();
    expect(await modelUseOfTask(db, task.id)).toEqual({ tokens: 0, costUsd: 0, calls: 0 });
    const row = (totalTokens: number, costUsd: number) => ({
      id: randomUUID(),
      taskId: task.id,
      role: 'planning' as const,
      model: 'm',
      endpoint: 'http://127.0.0.1/v1',
      outcome: 'ok' as const,
      totalTokens,
      costUsd,
      latencyMs: 1,
    });
    await db.kysely
      .insertInto('ModelCall')
      .values([row(10, 0.25), row(5, 0.5)])
      .execute();
    expect(await modelUseOfTask(db, task.id)).toEqual({ tokens: 15, costUsd: 0.75, calls: 2 });
  });
});

const Provenance: RowSchema<{ n: number }> = {
  safeParse: (input) =>
    typeof input === 'object' && input !== null && 'n' in input && typeof input.n === 'number'
      ? { success: true, data: { n: input.n } }
      : { success: false, error: { message: 'not {n}' } },
};

describe('LearningPattern and Feedback', () => {
  it('creates a pattern once, updates it under its lock and answers it once active', async () => {
    const key = { type: 'strategy' as const, scope: `kind:${randomUUID()}`, signature: 'plan-shape' };
    const create = () =>
      transaction(db, (tx) =>
        ensurePattern(tx, {
          ...key,
          id: randomUUID(),
          content: 'none yet',
          source: 'execution',
          provenance: { n: 0 },
        }),
      );
    await create();
    await create();
    const query = { scope: key.scope, types: null, limit: 5 };
    expect(await activePatterns(db, query)).toEqual([]);
    await transaction(db, async (tx) => {
      const locked = await lockPattern(tx, key, Provenance);
      expect(locked).toMatchObject({ successCount: 0, failureCount: 0, provenance: { n: 0 } });
      if (locked === null) return;
      await updatePattern(tx, locked.id, {
        successCount: 1,
        failureCount: 0,
        confidence: 2 / 3,
        provenance: { n: 1 },
        content: 'it worked',
        status: 'active',
      });
    });
    expect(await activePatterns(db, query)).toMatchObject([
      { type: 'strategy', scope: key.scope, content: 'it worked', successCount: 1, confidence: 2 / 3 },
    ]);
    expect(await activePatterns(db, { ...query, types: ['code_pattern'] })).toEqual([]);
    const version = await db.kysely
      .selectFrom('LearningPattern')
      .select('version')
      .where('scope', '=', key.scope)
      .executeTakeFirstOrThrow();
    expect(version.version).toBe(2);
  });

  it('is a DB.ROW_INVALID read when a stored provenance does not match its schema', async () => {
    const key = { type: 'strategy' as const, scope: `kind:${randomUUID()}`, signature: 'plan-shape' };
    await transaction(db, (tx) =>
      ensurePattern(tx, {
        ...key,
        id: randomUUID(),
        content: 'x',
        source: 'execution',
        provenance: { other: 1 },
      }),
    );
    await expect(transaction(db, (tx) => lockPattern(tx, key, Provenance))).rejects.toMatchObject({
      code: 'DB.ROW_INVALID',
    });
  });

  it('keeps one verdict row per event', async () => {
    const feedback = {
      taskId: randomUUID(),
      stepId: randomUUID(),
      approvalId: randomUUID(),
      verdict: 'approved' as const,
      comment: null,
      data: { tool: 'respond' },
      sourceEventId: randomUUID(),
    };
    expect(await transaction(db, (tx) => insertVerdictFeedback(tx, { id: randomUUID(), ...feedback }))).toBe(
      true,
    );
    expect(await transaction(db, (tx) => insertVerdictFeedback(tx, { id: randomUUID(), ...feedback }))).toBe(
      false,
    );
    await expect(
      sql`UPDATE "Feedback" SET "verdict" = 'maybe' WHERE "sourceEventId" = ${feedback.sourceEventId}`.execute(
        db.kysely,
      ),
    ).rejects.toMatchObject({ code: '23514' });
  });
});
