import { randomUUID } from 'node:crypto';
import {
  ApprovalDecided,
  ApprovalsDecided,
  CloudEventTypes,
  ErrorCodes,
  PlanFailed,
  PlanProposed,
  SandboxRunCompleted,
  TaskCancelRequestedCloudEvent,
  argumentsHash,
  createEnvelope,
  taskRequestRef,
  toolRegistry,
  type JsonValue,
} from '@tandem/contracts';
import { handleMessage, type ConsumerDefinition } from '@tandem/bus';
import { createDb, json, migrate, type Db } from '@tandem/db';
import { createLogger } from '@tandem/service-kit';
import { createTestDatabase, type TestDatabase } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutorDeps } from '../src/deps.js';
import { approvalBatchDecided } from '../src/handlers/approval-batch-decided.js';
import { approvalDecided } from '../src/handlers/approval-decided.js';
import { planFailed } from '../src/handlers/plan-failed.js';
import { planProposed } from '../src/handlers/plan-proposed.js';
import { sandboxRunCompleted } from '../src/handlers/sandbox-run-completed.js';
import { taskCancelRequested } from '../src/handlers/task-cancel-requested.js';
import { filesOf, outboxOf, runOf, seedTask, stepOf, stepsOf, type SeededTask } from './helpers/seed.js';

// The executor's consumers on real Postgres, driven through the framework's handleMessage (the inbox row,
// the transaction, after-commit work) without NATS: what each message records, and that a redelivery or
// an event no stored row backs changes nothing.

let database: TestDatabase;
let db: Db;
let deps: ExecutorDeps;
const log = createLogger({ service: 'executor-test', level: 'silent' });
const modelCalls: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
  db = createDb({ url: database.url, poolMax: 4 });
  deps = {
    db,
    log,
    prefix: 'test',
    codeModel: {
      complete: async (request) => {
        modelCalls.push(request.idempotencyKey);
        return { content: '```\nresult = 42\n```' };
      },
    },
    http: { run: () => Promise.reject(new Error('http must not be called')) },
    codePatterns: () => Promise.resolve([]),
    sandboxLimits: { timeoutMs: 1000, maxOutputBytes: 1024 },
    workspace: { maxFileBytes: 100, maxTotalBytes: 1000, maxFiles: 10 },
    claimStaleMs: 60_000,
    maxFixAttempts: 1,
    maxReplans: 0,
    maxCodeChars: 10_000,
    earlyCancelTtlMs: 60_000,
  };
}, 120_000);

afterAll(async () => {
  await db?.close();
  await database?.drop();
}, 60_000);

/** One delivery of `message` to a consumer, as the bus would make it. */
async function deliver<TMessage>(
  definition: ConsumerDefinition<ExecutorDeps, TMessage>,
  message: TMessage,
  options: { messageId?: string; deliveryCount?: number } = {},
): Promise<void> {
  await handleMessage(db, definition, deps, 3, message, {
    messageId: options.messageId ?? definition.messageId(message),
    consumer: `TEST_${definition.durable}`,
    subject: `test.${definition.subject}`,
    streamSeq: 1,
    deliveryCount: options.deliveryCount ?? 1,
    headers: {},
    json: message,
    log,
    working: () => undefined,
  });
}

async function inboxRows(durable: string): Promise<number> {
  const rows = await db.kysely
    .selectFrom('ProcessedMessage')
    .select('messageId')
    .where('consumer', '=', durable)
    .execute();
  return rows.length;
}

/** The `plan.proposed` of a seeded plan, as the planner publishes it. */
async function planEnvelope(task: SeededTask, version = 1) {
  const steps = await db.kysely
    .selectFrom('PlanStep')
    .selectAll()
    .where('planId', '=', task.planId)
    .orderBy('index')
    .execute();
  return createEnvelope(
    PlanProposed,
    {
      taskId: task.taskId,
      planId: task.planId,
      version,
      request: taskRequestRef(task),
      kind: 'general',
      agentId: null,
      steps: steps.map((step) => ({
        stepId: step.id,
        key: step.stepKey,
        index: step.index,
        tool: step.tool,
        arguments: argumentsOf(step.arguments),
        riskClass: toolRegistry.get(step.tool)?.risk ?? 'read',
        sideEffects: false,
        dependsOn: step.dependsOn,
      })),
    },
    { correlationId: task.taskId },
  );
}

function argumentsOf(value: unknown): Record<string, JsonValue> {
  const parsed = PlanProposed.data.shape.steps.element.shape.arguments.safeParse(value);
  if (!parsed.success) throw new Error('a seeded step has no arguments record');
  return parsed.data;
}

/** The task's approval rows in plan order. */
async function approvalsOf(task: SeededTask) {
  const rows = await db.kysely
    .selectFrom('ApprovalRequest')
    .selectAll()
    .where('planId', '=', task.planId)
    .execute();
  return rows.sort((a, b) => task.stepIds.indexOf(a.stepId ?? '') - task.stepIds.indexOf(b.stepId ?? ''));
}

function batchEnvelope(task: SeededTask, approvals: Array<{ id: string; stepId: string | null }>) {
  return createEnvelope(
    ApprovalsDecided,
    {
      taskId: task.taskId,
      planId: task.planId,
      decisions: approvals.map((approval) => ({
        approvalId: approval.id,
        stepId: approval.stepId ?? '',
        decision: 'approved' as const,
        decidedBy: 'policy',
        reason: null,
      })),
    },
    { correlationId: task.taskId },
  );
}

describe('plan.proposed', () => {
  it('starts the run with a waiting row per step, once; a redelivery changes nothing', async () => {
    const task = await seedTask(db, [{ tool: 'respond', arguments: { answer: 'x' }, status: 'waiting' }], {
      withRun: false,
    });
    const envelope = await planEnvelope(task);
    await deliver(planProposed, envelope);
    expect(await runOf(db, task.taskId)).toMatchObject({
      status: 'running',
      planId: task.planId,
      replans: 0,
    });
    expect((await stepsOf(db, task.taskId)).map((step) => step.status)).toEqual(['waiting']);
    await deliver(planProposed, envelope, { deliveryCount: 2 });
    expect((await stepsOf(db, task.taskId)).map((step) => step.status)).toEqual(['waiting']);
    expect(await inboxRows('executor-plan-proposed')).toBeGreaterThanOrEqual(1);
  });

  it('runs the plan at once when its decisions arrived first', async () => {
    const task = await seedTask(
      db,
      [{ tool: 'respond', arguments: { answer: 'early' }, status: 'waiting' }],
      {
        withRun: false,
      },
    );
    await db.kysely
      .updateTable('ApprovalRequest')
      .set({ status: 'approved' })
      .where('planId', '=', task.planId)
      .execute();
    await deliver(approvalBatchDecided, batchEnvelope(task, await approvalsOf(task)));
    expect((await stepsOf(db, task.taskId)).map((step) => step.status)).toEqual(['approved']);
    await deliver(planProposed, await planEnvelope(task));
    expect(await runOf(db, task.taskId)).toMatchObject({ status: 'completed', result: { answer: 'early' } });
  });

  it('switches a running task to a newer version and supersedes the old one; an older one changes nothing', async () => {
    const first = await seedTask(db, [{ tool: 'respond', arguments: { answer: 'v1' }, status: 'waiting' }]);
    // Version 2 of the same task: a new plan with its own steps.
    const second = await seedTask(db, [{ tool: 'respond', arguments: { answer: 'v2' }, status: 'waiting' }], {
      withRun: false,
      taskId: randomUUID(),
    });
    await db.kysely
      .updateTable('Plan')
      .set({ taskId: first.taskId, version: 2 })
      .where('id', '=', second.planId)
      .execute();
    const v2 = { ...second, taskId: first.taskId };
    await deliver(planProposed, await planEnvelope(v2, 2));
    expect(await runOf(db, first.taskId)).toMatchObject({ status: 'running', planId: second.planId });
    expect((await stepOf(db, first.stepIds[0] ?? '')).status).toBe('superseded');
    expect((await stepOf(db, second.stepIds[0] ?? '')).status).toBe('waiting');

    await deliver(planProposed, await planEnvelope(first, 1));
    expect((await runOf(db, first.taskId)).planId).toBe(second.planId);
  });
});

describe('approval.batch-decided', () => {
  it('records the stored policy decisions and runs what can run', async () => {
    const task = await seedTask(db, [
      { tool: 'write_file', arguments: { path: 'a.txt', content: 'a' }, status: 'waiting' },
      { tool: 'respond', arguments: { answer: 'done' }, status: 'waiting' },
    ]);
    await db.kysely
      .updateTable('ApprovalRequest')
      .set({ status: 'approved' })
      .where('planId', '=', task.planId)
      .execute();
    await deliver(approvalBatchDecided, batchEnvelope(task, await approvalsOf(task)));
    expect((await stepsOf(db, task.taskId)).map((step) => step.status)).toEqual(['completed', 'completed']);
    expect((await runOf(db, task.taskId)).status).toBe('completed');
    expect(await filesOf(db, task.taskId)).toEqual(['a.txt']);
  });

  it('records a policy rejection with APPROVAL.REJECTED and its reason, and fails the task', async () => {
    const task = await seedTask(db, [{ tool: 'respond', arguments: { answer: 'no' }, status: 'waiting' }]);
    await db.kysely
      .updateTable('ApprovalRequest')
      .set({ status: 'rejected', reason: 'not allowed here' })
      .where('planId', '=', task.planId)
      .execute();
    await deliver(approvalBatchDecided, batchEnvelope(task, await approvalsOf(task)));
    expect((await stepsOf(db, task.taskId))[0]).toMatchObject({
      status: 'rejected',
      error: { code: ErrorCodes.APPROVAL_REJECTED, message: 'not allowed here', retryable: false },
    });
    expect(await runOf(db, task.taskId)).toMatchObject({
      status: 'failed',
      error: { code: ErrorCodes.APPROVAL_REJECTED },
    });
  });

  it('dead-letters an event no stored decision backs (APPROVAL.UNVERIFIED), writing nothing', async () => {
    const task = await seedTask(db, [{ tool: 'respond', arguments: { answer: 'x' }, status: 'waiting' }]);
    const envelope = batchEnvelope(task, await approvalsOf(task));
    const before = await inboxRows('executor-approval-batch-decided');
    await expect(deliver(approvalBatchDecided, envelope)).rejects.toMatchObject({
      code: ErrorCodes.APPROVAL_UNVERIFIED,
      retryable: false,
    });
    expect((await stepsOf(db, task.taskId))[0]?.status).toBe('waiting');
    expect(await inboxRows('executor-approval-batch-decided')).toBe(before);
  });
});

describe('approval.decided', () => {
  async function decide(task: SeededTask, decision: 'approved' | 'rejected' | 'answered', answer?: string) {
    const [approval] = await approvalsOf(task);
    if (approval === undefined || approval.stepId === null) throw new Error('no approval row');
    return createEnvelope(
      ApprovalDecided,
      {
        approvalId: approval.id,
        taskId: task.taskId,
        planId: task.planId,
        stepId: approval.stepId,
        decision,
        mode: 'human',
        decidedBy: 'token:test',
        reason: null,
        ...(answer === undefined ? {} : { answer }),
      },
      { correlationId: task.taskId },
    );
  }

  it('applies the stored decision with the approver’s edited arguments', async () => {
    const task = await seedTask(db, [
      { tool: 'respond', arguments: { answer: 'planned' }, status: 'waiting' },
    ]);
    const edited = { answer: 'edited' };
    await db.kysely
      .updateTable('ApprovalRequest')
      .set({
        status: 'approved',
        mode: 'human',
        editedArguments: json(edited),
        argumentsHash: argumentsHash(edited),
      })
      .where('planId', '=', task.planId)
      .execute();
    await deliver(approvalDecided, await decide(task, 'approved'));
    expect(await stepOf(db, task.stepIds[0] ?? '')).toMatchObject({ approval: 'human', arguments: edited });
    expect(await runOf(db, task.taskId)).toMatchObject({ status: 'completed', result: { answer: 'edited' } });
  });

  it("gives an answered question the human's answer as its value", async () => {
    const task = await seedTask(db, [
      { tool: 'ask_human', arguments: { question: 'colour?' }, status: 'waiting' },
      {
        tool: 'respond',
        arguments: { answer: 'you said {{steps.s1.value.answer}}' },
        status: 'waiting',
        dependsOn: ['s1'],
      },
    ]);
    const approvals = await approvalsOf(task);
    await db.kysely
      .updateTable('ApprovalRequest')
      .set({ status: 'answered', mode: 'human', answer: 'blue' })
      .where('id', '=', approvals[0]?.id ?? '')
      .execute();
    await db.kysely
      .updateTable('ApprovalRequest')
      .set({ status: 'approved' })
      .where('id', '=', approvals[1]?.id ?? '')
      .execute();
    await deliver(approvalBatchDecided, batchEnvelope(task, approvals.slice(1)));
    // The answer is still to come: the step that uses it waits.
    expect((await runOf(db, task.taskId)).status).toBe('running');
    await deliver(approvalDecided, await decide(task, 'answered', 'blue'));
    expect(await runOf(db, task.taskId)).toMatchObject({
      status: 'completed',
      result: { answer: 'you said blue' },
    });
  });

  it('dead-letters a decision the request row does not back (APPROVAL.UNVERIFIED)', async () => {
    const task = await seedTask(db, [{ tool: 'respond', arguments: { answer: 'x' }, status: 'waiting' }]);
    await expect(deliver(approvalDecided, await decide(task, 'approved'))).rejects.toMatchObject({
      code: ErrorCodes.APPROVAL_UNVERIFIED,
    });
    expect((await stepsOf(db, task.taskId))[0]?.status).toBe('waiting');
  });
});

describe('sandbox.run-completed', () => {
  async function runningCode(files: Array<{ path: string; text: string | null }> = []) {
    const task = await seedTask(db, [
      { tool: 'run_code', arguments: { language: 'javascript', code: 'result = 42' }, status: 'running' },
      { tool: 'respond', arguments: { answer: 'got {{steps.s1.value}}' }, status: 'approved' },
    ]);
    const stepId = task.stepIds[0] ?? '';
    await db.kysely
      .updateTable('StepRun')
      .set({ code: 'result = 42' })
      .where('stepId', '=', stepId)
      .execute();
    await db.kysely
      .insertInto('StepAttempt')
      .values({
        id: randomUUID(),
        stepId,
        taskId: task.taskId,
        attempt: 1,
        origin: 'given',
        code: 'result = 42',
        sandboxKey: `${stepId}:1`,
        outcome: 'running',
      })
      .execute();
    const runId = randomUUID();
    for (const file of files)
      await db.kysely
        .insertInto('SandboxRunFile')
        .values({
          runId,
          path: file.path,
          content: file.text === null ? null : Buffer.from(file.text),
          size: file.text === null ? 0 : Buffer.byteLength(file.text),
          deleted: file.text === null,
        })
        .execute();
    return { ...task, stepId, runId };
  }

  function result(
    task: { taskId: string; stepId: string; runId: string },
    outcome: 'ok' | 'error' | 'killed',
    attempt = 1,
  ) {
    return createEnvelope(
      SandboxRunCompleted,
      {
        idempotencyKey: `${task.stepId}:${attempt}`,
        runId: task.runId,
        taskId: task.taskId,
        stepId: task.stepId,
        outcome,
        stdout: 'out',
        stderr: outcome === 'ok' ? '' : 'ReferenceError: x\n',
        stdoutTruncated: false,
        stderrTruncated: false,
        value: outcome === 'ok' ? 42 : null,
        exitCode: outcome === 'ok' ? 0 : 1,
        durationMs: 5,
      },
      { correlationId: task.taskId },
    );
  }

  it('completes the step, saves the files the program wrote, ends the attempt ok and moves the task on', async () => {
    const task = await runningCode([{ path: 'out.txt', text: 'written' }]);
    await deliver(sandboxRunCompleted, result(task, 'ok'));
    expect(await stepOf(db, task.stepId)).toMatchObject({
      status: 'completed',
      result: { value: 42, stdout: 'out', outcome: 'ok', runId: task.runId },
    });
    expect(await filesOf(db, task.taskId)).toEqual(['out.txt']);
    const attempt = await db.kysely
      .selectFrom('StepAttempt')
      .select('outcome')
      .where('stepId', '=', task.stepId)
      .executeTakeFirstOrThrow();
    expect(attempt.outcome).toBe('ok');
    expect(await runOf(db, task.taskId)).toMatchObject({ status: 'completed', result: { answer: 'got 42' } });
  });

  it('fails the step with WORKSPACE.LIMIT and saves nothing when the files are over the caps', async () => {
    const task = await runningCode([{ path: 'big.txt', text: 'x'.repeat(200) }]);
    await deliver(sandboxRunCompleted, result(task, 'ok'));
    expect(await stepOf(db, task.stepId)).toMatchObject({
      status: 'failed',
      error: { code: ErrorCodes.WORKSPACE_LIMIT },
    });
    expect(await filesOf(db, task.taskId)).toEqual([]);
    expect((await runOf(db, task.taskId)).status).toBe('failed');
  });

  it('hands a fixable failure to the code model, which writes attempt 2', async () => {
    const task = await runningCode();
    modelCalls.length = 0;
    await deliver(sandboxRunCompleted, result(task, 'error'));
    expect(modelCalls).toEqual([`code:${task.stepId}:2`]);
    expect(await stepOf(db, task.stepId)).toMatchObject({
      status: 'running',
      attempts: 2,
      code: 'result = 42',
    });
    const attempts = await db.kysely
      .selectFrom('StepAttempt')
      .select(['attempt', 'origin', 'outcome'])
      .where('stepId', '=', task.stepId)
      .orderBy('attempt')
      .execute();
    expect(attempts).toEqual([
      { attempt: 1, origin: 'given', outcome: 'error' },
      { attempt: 2, origin: 'fix', outcome: 'running' },
    ]);
  });

  it('fails the step for a killed program, and ignores a result for an attempt that is not running', async () => {
    const task = await runningCode();
    await deliver(sandboxRunCompleted, result(task, 'ok', 7));
    expect((await stepOf(db, task.stepId)).status).toBe('running');
    await deliver(sandboxRunCompleted, result(task, 'killed'));
    expect(await stepOf(db, task.stepId)).toMatchObject({
      status: 'failed',
      error: { code: ErrorCodes.SANDBOX_KILLED },
    });
    const finished = (await outboxOf(db, task.taskId)).filter(
      (row) => row.subject === 'test.step.finished.v1',
    );
    expect(finished).toHaveLength(1);
  });
});

describe('plan.failed', () => {
  it("fails a task that never ran with the planner's error, once", async () => {
    const task = await seedTask(db, [{ tool: 'respond', arguments: { answer: 'x' }, status: 'waiting' }], {
      withRun: false,
    });
    const envelope = createEnvelope(
      PlanFailed,
      {
        taskId: task.taskId,
        request: taskRequestRef(task),
        kind: 'general',
        agentId: null,
        error: { code: 'PLAN.INVALID', message: 'no valid plan', retryable: true },
      },
      { correlationId: task.taskId },
    );
    await deliver(planFailed, envelope);
    await deliver(planFailed, { ...envelope, id: randomUUID() });
    expect(await runOf(db, task.taskId)).toMatchObject({
      status: 'failed',
      planId: null,
      error: { code: 'PLAN.INVALID', retryable: false },
    });
    expect((await outboxOf(db, task.taskId)).map((row) => row.subject)).toEqual(['test.task.failed.v1']);
  });
});

describe('task.cancel-requested', () => {
  function cancel(data: Record<string, unknown>) {
    return TaskCancelRequestedCloudEvent.parse({
      specversion: '1.0',
      id: randomUUID(),
      source: 'urn:test:submitter',
      type: CloudEventTypes.taskCancelRequested,
      datacontenttype: 'application/json',
      data,
    });
  }

  it('cancels a running task and its open steps, with the reason', async () => {
    const task = await seedTask(db, [{ tool: 'respond', arguments: { answer: 'x' }, status: 'waiting' }]);
    await deliver(taskCancelRequested, cancel({ taskId: task.taskId, reason: 'changed my mind' }));
    expect(await runOf(db, task.taskId)).toMatchObject({
      status: 'cancelled',
      error: { code: ErrorCodes.TASK_CANCELLED, message: 'changed my mind' },
    });
    expect((await stepsOf(db, task.taskId))[0]?.status).toBe('cancelled');
    const [event] = await outboxOf(db, task.taskId);
    expect(event?.payload).toMatchObject({
      data: { status: 'cancelled', planVersion: 1, tools: ['respond'] },
    });
  });

  it('keeps a cancel for a task not stored yet', async () => {
    const externalId = `req-${randomUUID()}`;
    await deliver(taskCancelRequested, cancel({ request: { source: 'urn:test:ci', id: externalId } }));
    const kept = await db.kysely
      .selectFrom('EarlyCancel')
      .selectAll()
      .where('externalId', '=', externalId)
      .execute();
    expect(kept).toMatchObject([{ source: 'urn:test:ci', taskId: null }]);
    expect(kept[0]?.expiresAt.getTime()).toBeGreaterThan(Date.now());
  });
});
