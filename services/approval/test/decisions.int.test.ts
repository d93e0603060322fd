import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApproverWebhookPayload } from '@tandem/contracts';
import { createTestToken, waitFor } from '@tandem/testing';
import { generateWebhookSecret, signWebhook, verifyWebhook } from '@tandem/webhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, RUN_THEN_RESPOND, type Harness } from './harness.js';
import { auditRows, requestWhere } from './helpers/rows.js';

const DECISION_SECRET = generateWebhookSecret();
const ROTATED_SECRET = generateWebhookSecret();
const NOTIFY_SECRET = generateWebhookSecret();

let harness: Harness;
let directory: string;
let receiver: Server;
const received: Array<{ payload: ApproverWebhookPayload; id: string }> = [];

/** Escalating requests: 1.5 s for the approvers, then 1.5 s for oncall; run_code always asks. */
function policy(url: string): string {
  return `
version: test-decisions-1
defaults: { deadline: 1h, onExpiry: reject, group: approvers, reminderBefore: 59m59s }
escalation: { group: oncall, deadline: 1500ms }
trust:
  low: { minScore: 0, minSuccesses: 0 }
rules:
  - id: quick-escalation
    effect: ask
    tools: [run_code]
    arguments: { code: 'escalate-me' }
    deadline: 1500ms
    onExpiry: escalate
  - id: code-is-reviewed
    effect: ask
    tools: [run_code]
    reason: code is reviewed here
webhooks:
  - { name: approvers-hook, url: '${url}', groups: [approvers, oncall], secretEnv: TEST_NOTIFY_SECRET }
`;
}

beforeAll(async () => {
  receiver = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      const verified = verifyWebhook({ headers: request.headers, body, secrets: [NOTIFY_SECRET] });
      if (!verified.ok) {
        response.writeHead(401).end();
        return;
      }
      received.push({ payload: ApproverWebhookPayload.parse(JSON.parse(body)), id: verified.id });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const { port } = receiver.address() as AddressInfo;
  directory = await mkdtemp(join(tmpdir(), 'tandem-policy-'));
  const file = join(directory, 'policy.yaml');
  // The first matching ask rule wins: the escalation rule comes first for its code.
  await writeFile(file, policy(`http://127.0.0.1:${port}/hook`));
  harness = await createHarness({
    // Every request here waits for a group: the harness's approver is in both.
    approverGroups: ['approvers', 'oncall'],
    env: {
      TANDEM_APPROVAL_POLICY: file,
      TANDEM_DECISION_WEBHOOK_SECRETS: `${DECISION_SECRET},${ROTATED_SECRET}`,
      TANDEM_APPROVAL_SWEEP_MS: '100',
      TEST_NOTIFY_SECRET: NOTIFY_SECRET,
    },
  });
});

afterAll(async () => {
  await harness?.close();
  await new Promise((resolve) => receiver?.close(resolve));
  await rm(directory, { recursive: true, force: true });
});

async function pendingRunCode(
  code = 'result = 6 * 7',
): Promise<{ id: string; taskId: string; stepId: string }> {
  const task = await harness.seedTask();
  const plan = await harness.seedPlan(task, 1, [
    { tool: 'run_code', arguments: { language: 'python', code }, riskClass: 'compute' },
    ...RUN_THEN_RESPOND.slice(1),
  ]);
  await harness.proposeAndWait(plan);
  const row = await requestWhere(harness.runtime.db, { planId: plan.planId, tool: 'run_code' });
  expect(row.status).toBe('pending');
  return { id: row.id, taskId: task.taskId, stepId: row.stepId ?? '' };
}

function sendWebhook(
  body: unknown,
  options: { secret?: string; id?: string; timestamp?: number; raw?: string } = {},
) {
  const raw = options.raw ?? JSON.stringify(body);
  const headers = signWebhook({
    id: options.id ?? `msg_${randomUUID()}`,
    timestamp: options.timestamp ?? Math.floor(Date.now() / 1000),
    body: raw,
    secrets: [options.secret ?? DECISION_SECRET],
  });
  return fetch(`${harness.baseUrl}/v1/webhooks/decisions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: raw,
  });
}

async function decidedCount(approvalId: string): Promise<number> {
  return harness.decided.filter((event) => event.data.approvalId === approvalId).length;
}

describe('decisions apply exactly once', () => {
  it('the same decision sent twice: one effect, the second gets 409', async () => {
    const { id } = await pendingRunCode();
    const first = await harness.post(`/v1/approvals/${id}/decision`, { decision: 'approve' });
    const second = await harness.post(`/v1/approvals/${id}/decision`, { decision: 'approve' });
    expect(first.status).toBe(200);
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({ error: { code: 'APPROVAL.ALREADY_DECIDED' } });
    await waitFor(async () => (await decidedCount(id)) === 1, { description: 'one approval.decided' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await decidedCount(id)).toBe(1);
  });

  it('the approver group sees the request with risk, trust, basis, deadline and the plan around it', async () => {
    const { id } = await pendingRunCode();
    const view = await harness.get(`/v1/approvals/${id}`);
    expect(view.body).toMatchObject({
      riskLevel: 'low',
      basis: 'rule:code-is-reviewed',
      group: 'approvers',
      escalationLevel: 0,
      plan: [
        { key: 's1', tool: 'run_code' },
        { key: 's2', tool: 'respond' },
      ],
    });
    expect(typeof view.body['deadline']).toBe('string');
    const notified = await waitFor(
      () =>
        received.find(
          (entry) => entry.payload.data.approvalId === id && entry.payload.type === 'approval.requested',
        ),
      { description: 'the signed approval.requested webhook' },
    );
    expect(notified.payload.data).toMatchObject({ tool: 'run_code', group: 'approvers', riskLevel: 'low' });
    // The reminder comes once, before the deadline (here: at once, 59m59s before a 1h deadline).
    const reminder = await waitFor(
      () =>
        received.find(
          (entry) => entry.payload.data.approvalId === id && entry.payload.type === 'approval.reminder',
        ),
      { description: 'the signed approval.reminder webhook' },
    );
    expect(reminder.id).not.toBe(notified.id);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(
      received.filter(
        (entry) => entry.payload.data.approvalId === id && entry.payload.type === 'approval.reminder',
      ),
    ).toHaveLength(1);
    const row = await requestWhere(harness.runtime.db, { id });
    expect(row.remindedAt).not.toBeNull();
  });
});

describe('signed decision webhooks', () => {
  it('a valid signature decides once; the replay gets 401 and changes nothing', async () => {
    const { id } = await pendingRunCode();
    const webhookId = `msg_${randomUUID()}`;
    const body = { approvalId: id, decision: 'approve', decidedBy: 'carol@example.com' };
    const first = await sendWebhook(body, { id: webhookId });
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ status: 'approved', decidedBy: 'webhook:carol@example.com' });
    const replay = await sendWebhook(body, { id: webhookId });
    expect(replay.status).toBe(401);
    expect(await replay.json()).toMatchObject({ error: { code: 'WEBHOOK.SIGNATURE_INVALID' } });
    await waitFor(async () => (await decidedCount(id)) === 1, { description: 'one approval.decided' });
  });

  it('a missing, wrong or stale signature gets 401 and the request stays pending', async () => {
    const { id } = await pendingRunCode();
    const body = { approvalId: id, decision: 'reject', reason: 'no', decidedBy: 'mallory' };
    const unsigned = await fetch(`${harness.baseUrl}/v1/webhooks/decisions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(unsigned.status).toBe(401);
    expect((await sendWebhook(body, { secret: generateWebhookSecret() })).status).toBe(401);
    expect((await sendWebhook(body, { timestamp: Math.floor(Date.now() / 1000) - 301 })).status).toBe(401);
    // A body other than the one signed.
    const headers = signWebhook({
      id: 'msg_tamper',
      timestamp: Math.floor(Date.now() / 1000),
      body: '{}',
      secrets: [DECISION_SECRET],
    });
    const tampered = await fetch(`${harness.baseUrl}/v1/webhooks/decisions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    expect(tampered.status).toBe(401);
    const row = await requestWhere(harness.runtime.db, { id });
    expect(row.status).toBe('pending');
  });

  it('the rotated secret works during the overlap; unknown fields are refused, not stripped', async () => {
    const { id } = await pendingRunCode();
    const extra = await sendWebhook({ approvalId: id, decision: 'approve', decidedBy: 'carol', admin: true });
    expect(extra.status).toBe(400);
    const coerced = await sendWebhook({ approvalId: id, decision: 'reject', decidedBy: 'carol', reason: 42 });
    expect(coerced.status).toBe(400);
    const rotated = await sendWebhook(
      { approvalId: id, decision: 'reject', reason: 'not today', decidedBy: 'dave' },
      { secret: ROTATED_SECRET },
    );
    expect(rotated.status).toBe(200);
    expect(await rotated.json()).toMatchObject({ status: 'rejected', reason: 'not today' });
  });
});

describe('edits', () => {
  it('an edited step is validated again: a bad edit is refused and changes nothing, a good one approves it', async () => {
    const { id } = await pendingRunCode();
    const unknownField = await harness.post(`/v1/approvals/${id}/decision`, {
      decision: 'edit',
      arguments: { language: 'python', code: 'result = 1', shell: true },
    });
    expect(unknownField.status).toBe(422);
    expect(unknownField.body).toMatchObject({ error: { code: 'APPROVAL.INVALID_EDIT' } });
    const badLanguage = await harness.post(`/v1/approvals/${id}/decision`, {
      decision: 'edit',
      arguments: { language: 'cobol', code: 'DISPLAY 1' },
    });
    expect(badLanguage.status).toBe(422);
    expect((await requestWhere(harness.runtime.db, { id })).status).toBe('pending');
    const edited = await harness.post(`/v1/approvals/${id}/decision`, {
      decision: 'edit',
      arguments: { language: 'python', code: 'result = 6 * 7 + 0' },
      reason: 'clearer',
    });
    expect(edited.status).toBe(200);
    expect(edited.body).toMatchObject({
      status: 'approved',
      editedArguments: { language: 'python', code: 'result = 6 * 7 + 0' },
    });
    const event = await waitFor(() => harness.decided.find((entry) => entry.data.approvalId === id), {
      description: 'approval.decided with the edited arguments',
    });
    expect(event.data.arguments).toEqual({ language: 'python', code: 'result = 6 * 7 + 0' });
  });
});

describe('deadlines', () => {
  it('escalates to the second group at the first deadline, then expires with APPROVAL.EXPIRED', async () => {
    const { id } = await pendingRunCode('escalate-me = 1');
    const approverOfFirstGroup = await createTestToken(harness.database.url, {
      role: 'approver',
      name: 'first-line',
      groups: ['approvers'],
    });
    const escalated = await waitFor(
      async () => {
        const row = await requestWhere(harness.runtime.db, { id });
        return row.escalationLevel === 1 ? row : undefined;
      },
      { description: 'the escalation', timeoutMs: 10_000 },
    );
    expect(escalated).toMatchObject({ status: 'pending', approverGroup: 'oncall' });
    const notified = await waitFor(
      () =>
        received.find(
          (entry) => entry.payload.data.approvalId === id && entry.payload.type === 'approval.escalated',
        ),
      { description: 'the approval.escalated webhook to oncall' },
    );
    expect(notified.payload.data.group).toBe('oncall');
    const listed = await harness.get('/v1/approvals?status=escalated');
    expect((listed.body['approvals'] as Array<{ id: string }>).map((entry) => entry.id)).toContain(id);
    const wrongGroup = await harness.post(
      `/v1/approvals/${id}/decision`,
      { decision: 'approve' },
      { token: approverOfFirstGroup.token },
    );
    // Escalated to oncall, the request is no longer the first line's: like an unknown request to them.
    expect(wrongGroup.status).toBe(404);
    expect(wrongGroup.body).toMatchObject({ error: { code: 'APPROVAL.NOT_FOUND' } });

    const expired = await waitFor(() => harness.decided.find((entry) => entry.data.approvalId === id), {
      description: 'approval.decided for the expiry',
      timeoutMs: 10_000,
    });
    expect(expired.data).toMatchObject({ decision: 'rejected', mode: 'auto', code: 'APPROVAL.EXPIRED' });
    const late = await harness.post(`/v1/approvals/${id}/decision`, { decision: 'approve' });
    expect(late.status).toBe(409);
    const row = await requestWhere(harness.runtime.db, { id });
    expect(row).toMatchObject({ status: 'expired', decidedBy: 'policy:expiry' });
    const audit = await auditRows(harness.runtime.db, { subjectId: row.stepId ?? '' });
    expect(audit.map((entry) => entry.action)).toEqual([
      'approval.requested',
      'approval.escalated',
      'approval.expired',
    ]);
  });
});
