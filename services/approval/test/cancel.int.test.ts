import { randomUUID } from 'node:crypto';
import { consumerNameFor, ErrorCodes } from '@tandem/contracts';
import { waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TASK_CANCEL_REQUESTED_CONSUMER } from '../src/handlers/task-cancel-requested.js';
import { createHarness, RUN_THEN_RESPOND, type Harness, type SeededTask, type StepSpec } from './harness.js';
import { auditCount, auditRows, deadLettersOf, requestsWhere } from './helpers/rows.js';

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness?.close();
});

const WITH_QUESTION: StepSpec[] = [
  { tool: 'ask_human', arguments: { question: 'Which account?' }, riskClass: 'read' },
  ...RUN_THEN_RESPOND,
];

/** A task with a plan whose ask_human and run_code wait for a human (respond is auto-approved). */
async function waitingTask(options?: { source?: string; externalId?: string }) {
  const task = await harness.seedTask(options);
  const plan = await harness.seedPlan(task, 1, WITH_QUESTION);
  await harness.proposeAndWait(plan);
  const rows = await requestsWhere(harness.runtime.db, { taskId: task.taskId });
  expect(rows.map((row) => row.status).sort()).toEqual(['approved', 'pending', 'pending']);
  return { task, plan, rows };
}

async function cancelAndWait(data: Record<string, unknown>): Promise<void> {
  const seq = await harness.publishCancel(harness.cancelEvent(data));
  await harness.waitForAck(TASK_CANCEL_REQUESTED_CONSUMER, 'task', seq);
}

async function statusesOf(task: SeededTask): Promise<Record<string, string>> {
  const rows = await requestsWhere(harness.runtime.db, { taskId: task.taskId });
  return Object.fromEntries(rows.map((row) => [row.tool ?? '', row.status]));
}

describe('task cancellation', () => {
  it('cancels the pending requests of a task named by id; later decisions get 409', async () => {
    const { task, rows } = await waitingTask();
    await cancelAndWait({ taskId: task.taskId, reason: 'user gave up', requestedBy: 'carol@example.com' });

    expect(await statusesOf(task)).toEqual({
      ask_human: 'cancelled',
      run_code: 'cancelled',
      respond: 'approved',
    });
    const question = rows.find((row) => row.tool === 'ask_human');
    const runCode = rows.find((row) => row.tool === 'run_code');
    expect((await harness.get(`/v1/approvals/${runCode?.id}`)).body).toMatchObject({
      status: 'cancelled',
      decidedBy: 'carol@example.com',
      reason: 'task cancelled: user gave up',
    });
    const approve = await harness.post(`/v1/approvals/${runCode?.id}/decision`, { decision: 'approve' });
    expect(approve.status).toBe(409);
    expect(approve.body).toMatchObject({
      error: { code: 'APPROVAL.ALREADY_DECIDED', details: { status: 'cancelled' } },
    });
    const answer = await harness.post(`/v1/approvals/${question?.id}/decision`, {
      decision: 'answer',
      answer: 'x',
    });
    expect(answer.status).toBe(409);

    const audit = await auditRows(harness.runtime.db, {
      actions: ['approval.cancelled', 'approval.task-cancelled'],
    });
    expect(
      audit
        .filter(
          (row) =>
            row.subjectId === task.taskId || [question?.stepId, runCode?.stepId].includes(row.subjectId),
        )
        .map((row) => [row.action, row.actor])
        .sort(),
    ).toEqual([
      ['approval.cancelled', 'carol@example.com'],
      ['approval.cancelled', 'carol@example.com'],
      ['approval.task-cancelled', 'carol@example.com'],
    ]);
    // Cancelled requests publish no decision.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(
      harness.decided.filter((event) => [question?.id, runCode?.id].includes(event.data.approvalId)),
    ).toEqual([]);
  });

  it('cancels a task named by the CloudEvent that requested it, once', async () => {
    const source = 'urn:test:crm';
    const externalId = `order-${randomUUID()}`;
    const { task } = await waitingTask({ source, externalId });
    const event = harness.cancelEvent({ request: { source, id: externalId } });
    await harness.waitForAck(TASK_CANCEL_REQUESTED_CONSUMER, 'task', await harness.publishCancel(event));
    expect(await statusesOf(task)).toEqual({
      ask_human: 'cancelled',
      run_code: 'cancelled',
      respond: 'approved',
    });
    const audited = await auditCount(harness.runtime.db);

    // The same event again (another Nats-Msg-Id, so JetStream stores it): handled once.
    await harness.waitForAck(TASK_CANCEL_REQUESTED_CONSUMER, 'task', await harness.publishCancel(event));
    expect(await auditCount(harness.runtime.db)).toBe(audited);
  });

  it('a plan arriving after the cancellation creates nothing', async () => {
    const { task, plan } = await waitingTask();
    await cancelAndWait({ taskId: task.taskId });
    const v2 = await harness.seedPlan(task, 2, RUN_THEN_RESPOND, { supersedes: plan.planId });
    await harness.proposeAndWait(v2);
    expect((await requestsWhere(harness.runtime.db, { planId: v2.planId })).length).toBe(0);
  });

  it('acknowledges a cancel request for an unknown task and does nothing else', async () => {
    const taskId = randomUUID();
    const before = await auditCount(harness.runtime.db);
    await cancelAndWait({ taskId });
    await cancelAndWait({ request: { source: 'urn:test:nobody', id: 'missing' } });
    expect(await auditCount(harness.runtime.db)).toBe(before);
    expect(
      (
        await deadLettersOf(
          harness.runtime.db,
          consumerNameFor(harness.prefix, TASK_CANCEL_REQUESTED_CONSUMER),
        )
      ).length,
    ).toBe(0);
  });

  it('dead-letters a malformed cancel request, and the next one still works', async () => {
    const { task } = await waitingTask();
    const consumer = consumerNameFor(harness.prefix, TASK_CANCEL_REQUESTED_CONSUMER);
    const malformed = [
      harness.cancelEvent({ taskId: 'not-a-uuid' }),
      harness.cancelEvent({ taskId: task.taskId, request: { source: 'urn:test:x', id: '1' } }),
      { ...harness.cancelEvent({ taskId: task.taskId }), type: 'tandem.task.requested' },
    ];
    const seqs: number[] = [];
    for (const event of malformed) seqs.push(await harness.publishCancel(event));
    const unparseable = await harness.publishRawCancel('{ not json');
    await harness.waitForAck(TASK_CANCEL_REQUESTED_CONSUMER, 'task', unparseable);
    const letters = await waitFor(
      async () => {
        const rows = await deadLettersOf(harness.runtime.db, consumer);
        return rows.length === 4 ? rows : undefined;
      },
      { description: 'four dead letters' },
    );
    expect(letters.map((row) => [Number(row.streamSeq), row.code])).toEqual([
      ...seqs.map((seq) => [seq, ErrorCodes.BUS_SCHEMA_INVALID]),
      [unparseable, ErrorCodes.BUS_UNPARSEABLE],
    ]);
    // None of them touched the task.
    expect(await statusesOf(task)).toEqual({
      ask_human: 'pending',
      run_code: 'pending',
      respond: 'approved',
    });

    await cancelAndWait({ taskId: task.taskId });
    expect(await statusesOf(task)).toEqual({
      ask_human: 'cancelled',
      run_code: 'cancelled',
      respond: 'approved',
    });
  });
});
