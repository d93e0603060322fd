import { randomUUID } from 'node:crypto';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudEventTypes, PublicSubjects } from '@tandem/contracts';
import { createTestToken, waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TASK_COMPLETED_CONSUMER } from '../src/handlers/task-completed.js';
import { TASK_FAILED_CONSUMER } from '../src/handlers/task-failed.js';
import { createHarness, type Harness, type StepSpec } from './harness.js';
import {
  requestWhere,
  setTrust,
  storeStepRun,
  trustEventsOf,
  trustOf as storedTrust,
} from './helpers/rows.js';

const AGENT = 'report-bot';
let harness: Harness;
let directory: string;

const POLICY = `
version: test-trust-1
defaults: { deadline: 1h, onExpiry: reject }
trust:
  low: { minScore: 0, minSuccesses: 0 }
  medium: { minScore: 0.5, minSuccesses: 3 }
rules:
  - id: no-writes-to-vault
    effect: deny
    tools: [write_file]
    arguments: { path: '^vault/' }
    reason: the vault is written by people
`;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'tandem-policy-'));
  const policy = join(directory, 'policy.yaml');
  await writeFile(policy, POLICY);
  harness = await createHarness({
    env: { TANDEM_APPROVAL_POLICY: policy, TANDEM_AUTO_APPROVE: 'read,compute,write,network' },
  });
});

afterAll(async () => {
  await harness?.close();
  await rm(directory, { recursive: true, force: true });
});

function writeStep(path: string): StepSpec {
  return { tool: 'write_file', arguments: { path, content: 'quarterly numbers' }, riskClass: 'write' };
}

/** Proposes a one-step plan for the agent (submitted with a token, so the agent's trust applies). */
async function propose(
  step: StepSpec,
  options: { input?: Record<string, unknown>; verified?: boolean } = {},
) {
  const task = await harness.seedTask({
    agentId: AGENT,
    submittedBy: options.verified === false ? null : `token:${randomUUID()}`,
    ...(options.input ? { input: options.input } : {}),
  });
  const plan = await harness.seedPlan(task, 1, [step], { agentId: AGENT });
  await harness.proposeAndWait(plan);
  const request = await requestWhere(harness.runtime.db, { planId: plan.planId });
  return { task, plan, request };
}

/** The task outcome CloudEvent the executor would publish (one step, `s1`, plan version 1). */
function outcomeEvent(taskId: string, status: 'completed' | 'failed', code?: string) {
  return {
    specversion: '1.0',
    id: randomUUID(),
    source: '/tandem/executor',
    type: status === 'completed' ? CloudEventTypes.taskCompleted : CloudEventTypes.taskFailed,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    subject: taskId,
    data: {
      taskId,
      request: { source: 'urn:test:approval', id: taskId },
      status,
      agentId: AGENT,
      planVersion: 1,
      ...(status === 'completed'
        ? { result: { answer: 'done', steps: [{ id: 's1', tool: 'write_file' }] } }
        : { error: { code: code ?? 'STEP.FAILED', message: 'failed', retryable: false, stepId: 's1' } }),
    },
  };
}

async function publishOutcome(event: ReturnType<typeof outcomeEvent>, msgId: string = event.id) {
  const completed = event.data.status === 'completed';
  const ack = await harness.runtime.bus.publish(
    harness.runtime.bus.subject(completed ? PublicSubjects.taskCompleted : PublicSubjects.taskFailed),
    event,
    { msgId },
  );
  await harness.waitForAck(completed ? TASK_COMPLETED_CONSUMER : TASK_FAILED_CONSUMER, 'task', ack.seq);
}

async function finish(taskId: string, status: 'completed' | 'failed', code?: string) {
  await publishOutcome(outcomeEvent(taskId, status, code));
}

async function trustOf(actionClass: string) {
  return storedTrust(harness.runtime.db, AGENT, actionClass);
}

describe('trust earned from verified outcomes, lost on one rejection', () => {
  it('a new agent waits for a human on a medium step; approvals and successes earn automatic approval', async () => {
    const first = await propose(writeStep('reports/q1.md'));
    expect(first.request).toMatchObject({
      status: 'pending',
      riskLevel: 'medium',
      actionClass: 'write_file',
    });
    expect(first.request.basis).toMatch(/^trust:below medium/);

    // Three human approvals without edits and three verified successes.
    let request = first.request;
    let task = first.task;
    for (let round = 0; round < 3; round += 1) {
      if (round > 0) ({ request, task } = await propose(writeStep(`reports/q${round + 1}.md`)));
      expect(request.status).toBe('pending');
      const approved = await harness.post(`/v1/approvals/${request.id}/decision`, { decision: 'approve' });
      expect(approved.status).toBe(200);
      expect(approved.body).toMatchObject({ status: 'approved', decidedBy: 'token:test-approver' });
      await finish(task.taskId, 'completed');
    }
    const earned = await trustOf('write_file');
    expect(earned?.successes).toBe(3);
    expect(earned?.score).toBeGreaterThanOrEqual(0.5);

    const auto = await propose(writeStep('reports/q4.md'));
    expect(auto.request).toMatchObject({ status: 'approved', mode: 'auto' });
    expect(auto.request.basis).toMatch(/^trust:medium/);
    const events = await trustEventsOf(harness.runtime.db, AGENT, 'write_file');
    expect(events.map((event) => event.kind)).toEqual([
      'approval',
      'success',
      'approval',
      'success',
      'approval',
      'success',
    ]);
    expect(events.every((event) => event.reason.length > 0 && event.sourceEvent.length > 0)).toBe(true);
  });

  it('the same outcome event twice changes trust once', async () => {
    const before = await trustOf('write_file');
    const { task } = await propose(writeStep('reports/q5.md'));
    const event = outcomeEvent(task.taskId, 'completed');
    for (const msgId of [event.id, randomUUID()]) await publishOutcome(event, msgId);
    const after = await trustOf('write_file');
    expect(after?.successes).toBe((before?.successes ?? 0) + 1);
  });

  it('a sandbox limit costs more than a failure; an expiry is not the step failing', async () => {
    const program = (code: string): StepSpec => ({
      tool: 'run_code',
      arguments: { language: 'python', code },
      riskClass: 'compute',
    });
    const limited = await propose(program('x = 1'));
    await finish(limited.task.taskId, 'failed', 'SANDBOX.TIMEOUT');
    expect((await trustOf('run_code'))?.score).toBeCloseTo(-0.3, 5);
    const failing = await propose(program('x = 2'));
    await finish(failing.task.taskId, 'failed', 'STEP.FAILED');
    expect((await trustOf('run_code'))?.score).toBeCloseTo(-0.45, 5);
    const stopped = await propose(program('x = 3'));
    await finish(stopped.task.taskId, 'failed', 'APPROVAL.EXPIRED');
    expect((await trustOf('run_code'))?.score).toBeCloseTo(-0.45, 5);
  });

  it('one rejection drops the class below automatic approval', async () => {
    // Production context raises the write to high: a human decides even for this agent.
    const risky = await propose(writeStep('reports/prod.md'), { input: { environment: 'production' } });
    expect(risky.request).toMatchObject({ status: 'pending', riskLevel: 'high' });
    const rejected = await harness.post(`/v1/approvals/${risky.request.id}/decision`, {
      decision: 'reject',
      reason: 'not in production',
    });
    expect(rejected.status).toBe(200);
    const after = await trustOf('write_file');
    expect(after?.score).toBeLessThan(0);
    const next = await propose(writeStep('reports/q6.md'));
    expect(next.request.status).toBe('pending');
    expect(next.request.basis).toMatch(/^trust:below medium/);
    // Other classes keep their trust: a low read is still automatic.
    const read = await propose({
      tool: 'read_file',
      arguments: { path: 'reports/q1.md' },
      riskClass: 'read',
    });
    expect(read.request.status).toBe('approved');
  });

  it('an unverified submitter naming the agent does not get its trust and does not change it', async () => {
    await setTrust(harness.runtime.db, AGENT, 'write_file', { score: 0.9, successes: 50 });
    const borrowed = await propose(writeStep('reports/borrowed.md'), { verified: false });
    expect(borrowed.request).toMatchObject({ status: 'pending', trustAtDecision: null });
    expect(borrowed.request.basis).toMatch(/agent:unverified/);
    const approved = await harness.post(`/v1/approvals/${borrowed.request.id}/decision`, {
      decision: 'approve',
    });
    expect(approved.status).toBe(200);
    expect((await trustOf('write_file'))?.score).toBe(0.9);
  });

  it('a deny rule beats any trust', async () => {
    await setTrust(harness.runtime.db, AGENT, 'write_file', { score: 1, successes: 1000 });
    const denied = await propose(writeStep('vault/keys.txt'));
    expect(denied.request).toMatchObject({
      status: 'rejected',
      mode: 'auto',
      basis: 'rule:no-writes-to-vault',
    });
    const decision = await waitFor(
      () => harness.autoDecided.find((entry) => entry.approvalId === denied.request.id),
      { description: 'the batch decision of the denied step' },
    );
    expect(decision.decision).toBe('rejected');
  });

  it('an admin resets and caps trust, each change recorded with its reason', async () => {
    const capped = await harness.post(
      `/v1/agents/${AGENT}/trust/cap`,
      { actionClass: 'write_file', cap: 0.2, reason: 'incident review' },
      { token: harness.tokens.admin },
    );
    expect(capped.status).toBe(200);
    const capView = capped.body as {
      trust: Array<{ actionClass: string; score: number; cap: number | null }>;
    };
    expect(capView.trust.find((entry) => entry.actionClass === 'write_file')).toMatchObject({
      score: 0.2,
      cap: 0.2,
    });
    const forbidden = await harness.post(`/v1/agents/${AGENT}/trust/reset`, { reason: 'try' });
    expect(forbidden.status).toBe(403);
    const reset = await harness.post(
      `/v1/agents/${AGENT}/trust/reset`,
      { actionClass: 'write_file', reason: 'fresh start' },
      { token: harness.tokens.admin },
    );
    expect(reset.status).toBe(200);
    const history = (reset.body as { history: Array<{ kind: string; reason: string; actor: string | null }> })
      .history;
    expect(history.slice(0, 2).map((entry) => [entry.kind, entry.reason])).toEqual([
      ['reset', 'fresh start'],
      ['cap', 'incident review'],
    ]);
    expect(history[0]?.actor).toBe('token:test-admin');
  });
});

describe('revert', () => {
  it('counts against trust like a rejection, once; a step that did not complete cannot be reverted', async () => {
    const { request, task } = await propose({
      tool: 'read_file',
      arguments: { path: 'notes.md' },
      riskClass: 'read',
    });
    expect(request.status).toBe('approved');
    const stepId = request.stepId ?? '';
    const notRun = await harness.post(`/v1/steps/${stepId}/revert`, { reason: 'wrong file' });
    expect(notRun.status).toBe(409);
    await storeStepRun(harness.runtime.db, { stepId, taskId: task.taskId, status: 'completed' });
    const missingReason = await harness.post(`/v1/steps/${stepId}/revert`, {});
    expect(missingReason.status).toBe(400);
    const reverted = await harness.post(`/v1/steps/${stepId}/revert`, { reason: 'wrong file' });
    expect(reverted.status).toBe(200);
    expect(reverted.body).toMatchObject({ falseApproval: true, revertedBy: 'token:test-approver' });
    expect((await trustOf('read_file'))?.score).toBeLessThan(0);
    const again = await harness.post(`/v1/steps/${stepId}/revert`, { reason: 'wrong file' });
    expect(again.status).toBe(409);
    const submitter = await createTestToken(harness.database.url, { role: 'submitter', name: 'sub' });
    const denied = await harness.post(
      `/v1/steps/${stepId}/revert`,
      { reason: 'x' },
      { token: submitter.token },
    );
    expect(denied.status).toBe(403);
  });
});
