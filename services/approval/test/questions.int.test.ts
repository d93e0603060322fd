import { waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, RUN_THEN_RESPOND, type Harness, type StepSpec } from './harness.js';
import { auditCount, auditRows, requestWhere } from './helpers/rows.js';

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness?.close();
});

/** ask_human's risk class is `read`, which this harness auto-approves: a question must still wait. */
function askHuman(question: string, choices?: string[]): StepSpec {
  return { tool: 'ask_human', arguments: { question, ...(choices ? { choices } : {}) }, riskClass: 'read' };
}

async function questionFor(steps: StepSpec[]): Promise<{ approvalId: string; taskId: string }> {
  const task = await harness.seedTask();
  const plan = await harness.seedPlan(task, 1, steps);
  await harness.proposeAndWait(plan);
  const row = await requestWhere(harness.runtime.db, { planId: plan.planId, tool: 'ask_human' });
  return { approvalId: row.id, taskId: task.taskId };
}

describe('ask_human questions', () => {
  it('waits for a human answer, announced with kind and question, and publishes the answer', async () => {
    const { approvalId, taskId } = await questionFor([
      askHuman('Which region should the report cover?', ['eu-west', 'us-east']),
      { tool: 'respond', arguments: { answer: 'Done: {{steps.s1.value}}' }, riskClass: 'read' },
    ]);
    const requested = await waitFor(
      () => harness.requested.find((event) => event.data.approvalId === approvalId),
      { description: 'approval.requested for the question' },
    );
    expect(requested.data).toMatchObject({
      kind: 'question',
      question: 'Which region should the report cover?',
      tool: 'ask_human',
    });
    const view = await harness.get(`/v1/approvals/${approvalId}`);
    expect(view.body).toMatchObject({
      status: 'pending',
      mode: 'human',
      kind: 'question',
      question: 'Which region should the report cover?',
      answer: null,
      arguments: { choices: ['eu-west', 'us-east'] },
    });

    const answered = await harness.post(`/v1/approvals/${approvalId}/decision`, {
      decision: 'answer',
      answer: ' us-east ',
      decidedBy: 'bob@example.com',
    });
    expect(answered.status).toBe(200);
    expect(answered.body).toMatchObject({
      status: 'answered',
      answer: 'us-east',
      kind: 'question',
      decidedBy: 'token:test-approver',
    });

    const decided = await waitFor(
      () => harness.decided.find((event) => event.data.approvalId === approvalId),
      { description: 'approval.decided for the answer' },
    );
    expect(decided.data).toMatchObject({
      decision: 'answered',
      answer: 'us-east',
      mode: 'human',
      decidedBy: 'token:test-approver',
      taskId,
    });
    const audit = await auditRows(harness.runtime.db, { subjectId: decided.data.stepId });
    expect(audit.map((row) => [row.action, row.actor])).toEqual([
      ['approval.requested', null],
      ['approval.answered', 'token:test-approver'],
    ]);
    const listed = await harness.get(`/v1/approvals?status=answered&taskId=${taskId}`);
    expect(listed.body['approvals']).toMatchObject([{ id: approvalId, answer: 'us-east' }]);

    const again = await harness.post(`/v1/approvals/${approvalId}/decision`, {
      decision: 'answer',
      answer: 'eu-west',
    });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ error: { code: 'APPROVAL.ALREADY_DECIDED' } });
  });

  it('refuses the wrong kind of decision with 422 APPROVAL.WRONG_DECISION and changes nothing', async () => {
    const question = await questionFor([askHuman('Proceed with the migration?')]);
    const approve = await harness.post(`/v1/approvals/${question.approvalId}/decision`, {
      decision: 'approve',
    });
    expect(approve.status).toBe(422);
    expect(approve.body).toMatchObject({ error: { code: 'APPROVAL.WRONG_DECISION', retryable: false } });

    const task = await harness.seedTask();
    const plan = await harness.seedPlan(task, 1, RUN_THEN_RESPOND);
    await harness.proposeAndWait(plan);
    const runCode = await requestWhere(harness.runtime.db, { planId: plan.planId, tool: 'run_code' });
    const answer = await harness.post(`/v1/approvals/${runCode.id}/decision`, {
      decision: 'answer',
      answer: 'yes',
    });
    expect(answer.status).toBe(422);
    expect(answer.body).toMatchObject({ error: { code: 'APPROVAL.WRONG_DECISION' } });

    for (const id of [question.approvalId, runCode.id]) {
      expect((await harness.get(`/v1/approvals/${id}`)).body).toMatchObject({
        status: 'pending',
        answer: null,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(
      harness.decided.filter((event) => [question.approvalId, runCode.id].includes(event.data.approvalId)),
    ).toEqual([]);
  });

  it('refuses an answer that is not one of the choices with 422 APPROVAL.INVALID_ANSWER', async () => {
    const { approvalId } = await questionFor([askHuman('Ship it?', ['yes', 'no'])]);
    const wrong = await harness.post(`/v1/approvals/${approvalId}/decision`, {
      decision: 'answer',
      answer: 'maybe',
    });
    expect(wrong.status).toBe(422);
    expect(wrong.body).toMatchObject({
      error: { code: 'APPROVAL.INVALID_ANSWER', details: { choices: ['yes', 'no'] } },
    });
    expect((await harness.get(`/v1/approvals/${approvalId}`)).body).toMatchObject({ status: 'pending' });
    const right = await harness.post(`/v1/approvals/${approvalId}/decision`, {
      decision: 'answer',
      answer: 'no',
    });
    expect(right.status).toBe(200);
  });

  it('takes a rejection of a question, with its reason', async () => {
    const { approvalId } = await questionFor([askHuman('Which customer?')]);
    const rejected = await harness.post(`/v1/approvals/${approvalId}/decision`, {
      decision: 'reject',
      reason: 'the task should not need this',
    });
    expect(rejected.status).toBe(200);
    expect(rejected.body).toMatchObject({
      status: 'rejected',
      answer: null,
      reason: 'the task should not need this',
    });
    const decided = await waitFor(
      () => harness.decided.find((event) => event.data.approvalId === approvalId),
      { description: 'approval.decided for the rejection' },
    );
    expect(decided.data).toMatchObject({ decision: 'rejected', reason: 'the task should not need this' });
    expect(decided.data.answer ?? null).toBeNull();
  });

  it('applies one of two racing answers: one 200, one 409, one event', async () => {
    for (let round = 0; round < 3; round++) {
      const { approvalId } = await questionFor([askHuman('First or second?')]);
      const results = await Promise.all(
        ['first', 'second'].map((answer) =>
          harness.post(`/v1/approvals/${approvalId}/decision`, { decision: 'answer', answer }),
        ),
      );
      expect(results.map((result) => result.status).sort()).toEqual([200, 409]);
      const winner = results.find((result) => result.status === 200);
      const row = await requestWhere(harness.runtime.db, { id: approvalId });
      expect(row).toMatchObject({ status: 'answered', answer: winner?.body['answer'] });
      await waitFor(() => harness.decided.some((event) => event.data.approvalId === approvalId), {
        description: 'the winning answer on the bus',
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(harness.decided.filter((event) => event.data.approvalId === approvalId)).toHaveLength(1);
      expect(
        await auditCount(harness.runtime.db, { actions: ['approval.answered'], subjectId: row.stepId ?? '' }),
      ).toBe(1);
    }
  });

  it('rejects at once an ask_human step whose arguments hold no question', async () => {
    const task = await harness.seedTask();
    const plan = await harness.seedPlan(task, 1, [
      { tool: 'ask_human', arguments: { choices: ['a'] }, riskClass: 'read' },
    ]);
    await harness.proposeAndWait(plan);
    const row = await requestWhere(harness.runtime.db, { planId: plan.planId });
    expect(row).toMatchObject({
      kind: 'question',
      mode: 'auto',
      status: 'rejected',
      decidedBy: 'policy:question:invalid',
    });
    const decided = await waitFor(
      () => harness.autoDecided.find((decision) => decision.approvalId === row.id),
      {
        description: 'the automatic rejection on the bus',
      },
    );
    expect(decided).toMatchObject({ decision: 'rejected', decidedBy: 'policy:question:invalid' });
  });
});
