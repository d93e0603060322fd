import { randomUUID } from 'node:crypto';
import {
  ApprovalsDecided,
  CloudEventTypes,
  PlanProposed,
  PublicSubjects,
  createEnvelope,
  taskRequestRef,
  toolRegistry,
} from '@tandem/contracts';
import { waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExecutorHarness, type ExecutorHarness, type SeededTask } from './helpers/executor-harness.js';
import { outboxOf, stepsOf } from './helpers/seed.js';

// Issue 12, item 5: a cancel published before its task exists was dropped ("cancel requested for an
// unknown task"), and the task then ran. Now it is kept for a bounded time (TANDEM_EARLY_CANCEL_TTL_MS)
// by its request key or task id, and the task ends `cancelled` when it arrives, without running a step.

let harness: ExecutorHarness;

beforeAll(async () => {
  harness = await createExecutorHarness({ TANDEM_EARLY_CANCEL_TTL_MS: '600000' });
}, 120_000);

afterAll(async () => {
  await harness?.close();
}, 60_000);

async function publishCancel(data: Record<string, unknown>): Promise<string> {
  const { bus } = harness.runtime;
  const event = {
    specversion: '1.0',
    id: randomUUID(),
    source: 'urn:test:submitter',
    type: CloudEventTypes.taskCancelRequested,
    datacontenttype: 'application/json',
    data,
  };
  await bus.publish(bus.subject(PublicSubjects.taskCancelRequested), event, { msgId: randomUUID() });
  return event.id;
}

/** Waits until the executor's cancel consumer recorded every cancel published so far. */
async function cancelsHandled(count: number): Promise<void> {
  await waitFor(
    async () =>
      (
        await harness.runtime.db.kysely
          .selectFrom('ProcessedMessage')
          .select('messageId')
          .where('consumer', '=', 'executor-task-cancel-requested')
          .execute()
      ).length >= count,
    { timeoutMs: 10_000, description: `${count} cancel requests handled` },
  );
}

/** What the planner and the approval service publish for a seeded task: its plan, then its decisions. */
async function proposeAndApprove(task: SeededTask): Promise<void> {
  const { bus, db } = harness.runtime;
  const steps = await db.kysely
    .selectFrom('PlanStep')
    .selectAll()
    .where('planId', '=', task.planId)
    .orderBy('index')
    .execute();
  const plan = createEnvelope(
    PlanProposed,
    {
      taskId: task.taskId,
      planId: task.planId,
      version: 1,
      request: taskRequestRef(task),
      kind: 'general',
      agentId: null,
      steps: steps.map((step) => ({
        stepId: step.id,
        key: step.stepKey,
        index: step.index,
        tool: step.tool,
        arguments: { answer: 'ran anyway' },
        riskClass: toolRegistry.get(step.tool)?.risk ?? 'read',
        sideEffects: false,
        dependsOn: [],
      })),
    },
    { correlationId: task.taskId },
  );
  await bus.publishEvent(PlanProposed, plan);
  const approvals = await db.kysely
    .selectFrom('ApprovalRequest')
    .selectAll()
    .where('planId', '=', task.planId)
    .execute();
  await bus.publishEvent(
    ApprovalsDecided,
    createEnvelope(
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
    ),
  );
}

async function endOf(taskId: string) {
  return waitFor(
    async () => {
      const run = await harness.runtime.db.kysely
        .selectFrom('TaskRun')
        .selectAll()
        .where('taskId', '=', taskId)
        .executeTakeFirst();
      return run && run.status !== 'running' ? run : undefined;
    },
    { timeoutMs: 15_000, description: 'the task ended' },
  );
}

describe('a cancel that arrives before its task', () => {
  it('is kept by its request key, and the task ends cancelled without running a step', async () => {
    const externalId = `req-${randomUUID()}`;
    await publishCancel({ request: { source: 'urn:test:ci', id: externalId }, reason: 'changed my mind' });
    await cancelsHandled(1);

    // The task.requested CloudEvent arrives after the cancel: the planner stores the task and plans it.
    const task = await harness.seedTask(
      [{ tool: 'respond', arguments: { answer: 'ran anyway' }, status: 'approved' }],
      { withRun: false, source: 'urn:test:ci', externalId },
    );
    await proposeAndApprove(task);

    const run = await endOf(task.taskId);
    expect(run.status).toBe('cancelled');
    const steps = await stepsOf(harness.runtime.db, task.taskId);
    expect(steps.filter((step) => step.status === 'completed')).toEqual([]);
    const outcomes = await outboxOf(harness.runtime.db, task.taskId);
    const cancelled = outcomes.filter((row) => row.subject.endsWith('.task.cancelled.v1'));
    expect(cancelled).toHaveLength(1);
    expect(JSON.stringify(cancelled[0]?.payload)).toContain('changed my mind');
  }, 60_000);

  it('is kept by its task id as well', async () => {
    const taskId = randomUUID();
    await publishCancel({ taskId });
    await cancelsHandled(2);
    const task = await harness.seedTask(
      [{ tool: 'respond', arguments: { answer: 'ran anyway' }, status: 'approved' }],
      { withRun: false, taskId },
    );
    await proposeAndApprove(task);
    const run = await endOf(taskId);
    expect(run.status).toBe('cancelled');
  }, 60_000);

  it('is kept only for a bounded time: an expired one is forgotten and cancels nothing', async () => {
    const { kysely } = harness.runtime.db;
    const externalId = `req-${randomUUID()}`;
    await kysely
      .insertInto('EarlyCancel')
      .values({ id: randomUUID(), source: 'urn:test:ci', externalId, expiresAt: new Date(Date.now() - 1000) })
      .execute();
    const kept = () =>
      kysely.selectFrom('EarlyCancel').select('id').where('externalId', '=', externalId).execute();
    await waitFor(async () => (await kept()).length === 0, {
      timeoutMs: 10_000,
      description: 'the expired early cancel pruned',
    });
    const task = await harness.seedTask(
      [{ tool: 'respond', arguments: { answer: 'ran anyway' }, status: 'approved' }],
      { withRun: false, source: 'urn:test:ci', externalId },
    );
    await proposeAndApprove(task);
    expect((await endOf(task.taskId)).status).toBe('completed');
  }, 60_000);
});
