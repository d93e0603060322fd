import { randomUUID } from 'node:crypto';
import {
  CloudEventTypes,
  ErrorCodes,
  PlanProposed,
  StepFinished,
  TandemError,
  TaskCancelRequestedCloudEvent,
  TaskOutcomeCloudEvent,
  createEnvelope,
  toolRegistry,
  type RiskClass,
} from '@tandem/contracts';
import { handleMessage, type ConsumerDefinition } from '@tandem/bus';
import { createDb, json, migrate, type Db } from '@tandem/db';
import { createLogger, createMetrics } from '@tandem/service-kit';
import { createTestDatabase, type TestDatabase } from '@tandem/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ApprovalConsumerDeps } from '../src/consumers.js';
import type { StepOutcome } from '../src/domain/step-judgement.js';
import { planProposed } from '../src/handlers/plan-proposed.js';
import { stepFinished } from '../src/handlers/step-finished.js';
import { taskCancelRequested } from '../src/handlers/task-cancel-requested.js';
import { taskCompleted } from '../src/handlers/task-completed.js';
import { createApprovalMetrics } from '../src/metrics.js';
import { loadPolicy } from '../src/policy-file.js';
import {
  auditCount,
  auditRows,
  outboxRows,
  processedCount,
  requestWhere,
  requestsWhere,
  setTrust,
  storeStepRun,
  trustEventsOf,
} from './helpers/rows.js';

// The approval service's consumers on real Postgres, driven through the framework's handleMessage (the
// inbox row, the transaction, after-commit work) without NATS: what each message records, and that a
// redelivery changes nothing.

let database: TestDatabase;
let db: Db;
let deps: ApprovalConsumerDeps;
const outcomes: StepOutcome[] = [];
let deliveryKicks = 0;
const log = createLogger({ service: 'approval-test', level: 'silent' });

beforeAll(async () => {
  database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
  db = createDb({ url: database.url, poolMax: 4 });
  deps = {
    db,
    prefix: 'test',
    autoApprove: new Set<RiskClass>(['read']),
    policy: () => loadPolicy(undefined),
    endpoints: () => [],
    kickDeliveries: () => void deliveryKicks++,
    checkContext: {
      http: { allowHosts: [], allowHttp: false },
      runCode: { languages: ['javascript', 'python'], maxCodeChars: 10_000 },
    },
    metrics: createApprovalMetrics(createMetrics('approval-test').registry),
    onOutcome: (outcome) => void outcomes.push(outcome),
  };
}, 120_000);

afterAll(async () => {
  await db?.close();
  await database?.drop();
}, 60_000);

beforeEach(() => {
  outcomes.length = 0;
});

/** One delivery of `message` to a consumer, as the bus would make it. */
async function deliver<TMessage>(
  definition: ConsumerDefinition<ApprovalConsumerDeps, TMessage>,
  message: TMessage,
): Promise<void> {
  await handleMessage(db, definition, deps, 3, message, {
    messageId: definition.messageId(message),
    consumer: `TEST_${definition.durable}`,
    subject: `test.${definition.subject}`,
    streamSeq: 1,
    deliveryCount: 1,
    headers: {},
    json: message,
    log,
    working: () => undefined,
  });
}

const RUN_THEN_RESPOND = [
  { tool: 'run_code', arguments: { language: 'python', code: 'result = 6 * 7' }, riskClass: 'compute' },
  {
    tool: 'write_file',
    arguments: { path: 'answer.txt', content: 'The answer is {{steps.s1.value}}.' },
    riskClass: 'write',
  },
] as const;

/** Stores a task and its plan (the planner's rows); returns the `plan.proposed` envelope for them. */
async function seedPlan(options: { agentId?: string; submittedBy?: string } = {}) {
  const taskId = randomUUID();
  const planId = randomUUID();
  await db.kysely
    .insertInto('Task')
    .values({
      id: taskId,
      source: 'urn:test:approval',
      externalId: randomUUID(),
      requestHash: 'test',
      goal: 'a test task',
      status: 'planned',
      correlationId: taskId,
      agentId: options.agentId ?? null,
      submittedBy: options.submittedBy ?? null,
      updatedAt: new Date(),
    })
    .execute();
  await db.kysely.insertInto('Plan').values({ id: planId, taskId, version: 1 }).execute();
  const steps = RUN_THEN_RESPOND.map((step, index) => ({
    stepId: randomUUID(),
    key: `s${index + 1}`,
    index,
    tool: step.tool,
    arguments: step.arguments,
    riskClass: step.riskClass,
    sideEffects: toolRegistry.get(step.tool)?.sideEffects ?? false,
    dependsOn: index === 0 ? [] : ['s1'],
  }));
  for (const step of steps)
    await db.kysely
      .insertInto('PlanStep')
      .values({
        id: step.stepId,
        planId,
        stepKey: step.key,
        index: step.index,
        dependsOn: step.dependsOn,
        tool: step.tool,
        arguments: json(step.arguments),
        riskClass: step.riskClass,
        idempotencyKey: `${planId}:${step.key}`,
      })
      .execute();
  const data = PlanProposed.data.parse({
    taskId,
    planId,
    version: 1,
    request: { source: 'urn:test:approval', id: randomUUID() },
    kind: 'general',
    agentId: options.agentId ?? null,
    steps,
  });
  return createEnvelope(PlanProposed, data, { correlationId: taskId });
}

function stepFinishedOf(
  plan: Awaited<ReturnType<typeof seedPlan>>,
  key: string,
  status: 'completed' | 'failed',
) {
  const step = plan.data.steps.find((candidate) => candidate.key === key);
  if (step === undefined) throw new Error(`no step ${key}`);
  return createEnvelope(
    StepFinished,
    { taskId: plan.data.taskId, stepId: step.stepId, key, tool: step.tool, status, value: 42 },
    { correlationId: plan.data.taskId },
  );
}

/** The subjects of the approval outbox rows that name `id`, oldest first. */
async function approvalEvents(id: string): Promise<string[]> {
  return (await outboxRows(db, 'approval'))
    .filter((row) => JSON.stringify(row.payload).includes(id))
    .map((row) => row.subject.replace(/^test\./, ''));
}

describe('plan-proposed through the framework', () => {
  it('creates one request per step, a human for run_code, the template waiting for values; once', async () => {
    const plan = await seedPlan();
    await deliver(planProposed, plan);
    const [run, write] = await Promise.all(
      ['run_code', 'write_file'].map((tool) => requestWhere(db, { planId: plan.data.planId, tool })),
    );
    expect(run).toMatchObject({ status: 'pending', mode: 'human', kind: 'approval', decidedBy: null });
    expect(run?.deadline).not.toBeNull();
    expect(write).toMatchObject({ status: 'awaiting-values', mode: 'auto', deadline: null });
    expect(outcomes).toEqual(['pending', 'awaiting-values']);
    expect(await approvalEvents(plan.data.planId)).toEqual(['approval.requested.v1']);
    expect((await auditRows(db, { subjectId: run?.stepId ?? '' })).map((row) => row.action)).toEqual([
      'approval.requested',
    ]);
    expect(await processedCount(db, planProposed.durable, plan.id)).toBe(1);

    // A redelivery is a duplicate for the inbox: nothing is written, nothing counted.
    const audited = await auditCount(db);
    const outbox = (await outboxRows(db)).length;
    await deliver(planProposed, plan);
    expect(await requestsWhere(db, { planId: plan.data.planId })).toHaveLength(2);
    expect(await auditCount(db)).toBe(audited);
    expect((await outboxRows(db)).length).toBe(outbox);
    expect(outcomes).toEqual(['pending', 'awaiting-values']);
  });

  it('a plan arriving after its task was cancelled creates nothing but its inbox row', async () => {
    const plan = await seedPlan();
    await deliver(taskCancelRequested, cancelEvent({ taskId: plan.data.taskId }));
    await deliver(planProposed, plan);
    expect(await requestsWhere(db, { taskId: plan.data.taskId })).toEqual([]);
    expect(await processedCount(db, planProposed.durable, plan.id)).toBe(1);
  });
});

describe('step-finished through the framework', () => {
  it('judges the waiting step with the completed value, asks a human who sees it; a redelivery changes nothing', async () => {
    const plan = await seedPlan();
    await deliver(planProposed, plan);
    const s1 = plan.data.steps[0]?.stepId ?? '';
    await storeStepRun(db, {
      stepId: s1,
      taskId: plan.data.taskId,
      status: 'completed',
      result: { value: 42, stdout: '' },
    });
    outcomes.length = 0;
    const finished = stepFinishedOf(plan, 's1', 'completed');
    await deliver(stepFinished, finished);
    const write = await requestWhere(db, { planId: plan.data.planId, tool: 'write_file' });
    // A write without a verified agent goes to a human, now with the values bound.
    expect(write).toMatchObject({
      status: 'pending',
      mode: 'human',
      decidedBy: null,
      resolvedArguments: { path: 'answer.txt', content: 'The answer is 42.' },
    });
    expect(write.deadline).not.toBeNull();
    expect(outcomes).toEqual(['pending']);
    expect(await approvalEvents(write.id)).toEqual(['approval.requested.v1']);
    expect(await processedCount(db, stepFinished.durable, finished.id)).toBe(1);

    const audited = await auditCount(db);
    await deliver(stepFinished, finished);
    expect(await auditCount(db)).toBe(audited);
    expect(await approvalEvents(write.id)).toEqual(['approval.requested.v1']);
    expect(outcomes).toEqual(['pending']);
  });

  it('a failed step writes nothing, not even an inbox row; a completed one that frees nothing only its inbox row', async () => {
    const plan = await seedPlan();
    await deliver(planProposed, plan);
    const audited = await auditCount(db);
    const failed = stepFinishedOf(plan, 's1', 'failed');
    await deliver(stepFinished, failed);
    // s2 has no dependant: nothing waits for it.
    const unrelated = stepFinishedOf(plan, 's2', 'completed');
    await deliver(stepFinished, unrelated);
    expect((await requestWhere(db, { planId: plan.data.planId, tool: 'write_file' })).status).toBe(
      'awaiting-values',
    );
    expect(await auditCount(db)).toBe(audited);
    expect(await processedCount(db, stepFinished.durable, failed.id)).toBe(0);
    expect(await processedCount(db, stepFinished.durable, unrelated.id)).toBe(1);
  });

  it('a stored result that does not parse is DB.ROW_INVALID, not an empty value; nothing commits', async () => {
    const plan = await seedPlan();
    await deliver(planProposed, plan);
    await storeStepRun(db, {
      stepId: plan.data.steps[0]?.stepId ?? '',
      taskId: plan.data.taskId,
      status: 'completed',
      result: { value: 42, stdout: 17 },
    });
    const finished = stepFinishedOf(plan, 's1', 'completed');
    const error: unknown = await deliver(stepFinished, finished).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(TandemError);
    expect(error).toMatchObject({ code: ErrorCodes.DB_ROW_INVALID, retryable: false });
    expect((await requestWhere(db, { planId: plan.data.planId, tool: 'write_file' })).status).toBe(
      'awaiting-values',
    );
    expect(await processedCount(db, stepFinished.durable, finished.id)).toBe(0);
  });
});

function cancelEvent(data: Record<string, unknown>) {
  const parsed = TaskCancelRequestedCloudEvent.parse({
    specversion: '1.0',
    id: randomUUID(),
    source: 'urn:test:canceller',
    type: CloudEventTypes.taskCancelRequested,
    datacontenttype: 'application/json',
    data,
  });
  return parsed;
}

describe('task-cancel-requested and task-completed through the framework', () => {
  it('cancels the open requests once, with an audit row each and one for the task', async () => {
    const plan = await seedPlan();
    await deliver(planProposed, plan);
    const event = cancelEvent({ taskId: plan.data.taskId, reason: 'changed my mind' });
    await deliver(taskCancelRequested, event);
    const rows = await requestsWhere(db, { taskId: plan.data.taskId });
    expect(rows.map((row) => row.status).sort()).toEqual(['cancelled', 'cancelled']);
    expect(rows.every((row) => row.reason === 'task cancelled: changed my mind')).toBe(true);
    const audited = await auditCount(db);
    await deliver(taskCancelRequested, event);
    expect(await auditCount(db)).toBe(audited);
    const taskAudit = await auditRows(db, { subjectId: plan.data.taskId });
    expect(taskAudit.map((row) => row.action)).toEqual(['approval.task-cancelled']);
  });

  it('a completed task counts each approved step of a verified agent once', async () => {
    const agentId = `agent-${randomUUID()}`;
    await setTrust(db, agentId, 'run_code', { score: 0, successes: 0 });
    const plan = await seedPlan({ agentId, submittedBy: 'token:test' });
    await deliver(planProposed, plan);
    const run = await requestWhere(db, { planId: plan.data.planId, tool: 'run_code' });
    await db.kysely
      .updateTable('ApprovalRequest')
      .set({ status: 'approved', mode: 'human', decidedBy: 'token:test', decidedAt: new Date() })
      .where('id', '=', run.id)
      .execute();
    const completed = TaskOutcomeCloudEvent.parse({
      specversion: '1.0',
      id: randomUUID(),
      source: '/tandem/executor',
      type: CloudEventTypes.taskCompleted,
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      subject: plan.data.taskId,
      data: {
        taskId: plan.data.taskId,
        request: plan.data.request,
        status: 'completed',
        agentId,
        planVersion: 1,
        result: { answer: 'done', steps: [{ id: 's1', tool: 'run_code' }] },
      },
    });
    await deliver(taskCompleted, completed);
    await deliver(taskCompleted, completed);
    const events = await trustEventsOf(db, agentId, run.actionClass ?? 'run_code');
    expect(events.map((event) => [event.kind, event.sourceEvent])).toEqual([
      ['success', `step:${run.stepId}:finished`],
    ]);
    expect(await processedCount(db, taskCompleted.durable, completed.id)).toBe(1);
    // A completed task without an agent cannot change trust: it is acked with no write at all.
    const anonymous = TaskOutcomeCloudEvent.parse({
      ...completed,
      id: randomUUID(),
      data: { ...completed.data, agentId: null },
    });
    await deliver(taskCompleted, anonymous);
    expect(await processedCount(db, taskCompleted.durable, anonymous.id)).toBe(0);
  });
});
