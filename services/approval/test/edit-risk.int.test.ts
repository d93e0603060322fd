import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestToken, waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from './harness.js';
import { requestWhere } from './helpers/rows.js';

/** First-line approvers decide ordinary steps; critical ones go to the security group. */
const POLICY = `
version: test-edit-risk-1
defaults: { deadline: 1h, onExpiry: reject, group: first-line, reminderBefore: 0 }
trust:
  low: { minScore: 0, minSuccesses: 0 }
rules:
  - id: critical-to-security
    effect: ask
    riskLevels: [critical]
    group: security
    reason: critical steps are for the security group
`;

let harness: Harness;
let directory: string;
let firstLine: string;
let security: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'tandem-policy-'));
  const file = join(directory, 'policy.yaml');
  await writeFile(file, POLICY);
  harness = await createHarness({ env: { TANDEM_APPROVAL_POLICY: file } });
  firstLine = (
    await createTestToken(harness.database.url, { role: 'approver', name: 'first', groups: ['first-line'] })
  ).token;
  security = (
    await createTestToken(harness.database.url, { role: 'approver', name: 'sec', groups: ['security'] })
  ).token;
});

afterAll(async () => {
  await harness?.close();
  await rm(directory, { recursive: true, force: true });
});

async function pendingWrite(): Promise<{ id: string; stepId: string }> {
  const task = await harness.seedTask();
  const plan = await harness.seedPlan(task, 1, [
    { tool: 'write_file', arguments: { path: 'notes.txt', content: 'hello' }, riskClass: 'write' },
    { tool: 'respond', arguments: { answer: 'done' }, riskClass: 'read' },
  ]);
  await harness.proposeAndWait(plan);
  const row = await requestWhere(harness.runtime.db, { planId: plan.planId, tool: 'write_file' });
  expect(row).toMatchObject({ status: 'pending', approverGroup: 'first-line', riskLevel: 'medium' });
  return { id: row.id, stepId: row.stepId ?? '' };
}

describe("an approver's edit is judged again like a model's step (hole 4)", () => {
  it('an edit that raises the step to another group becomes a request for that group, never a run', async () => {
    const { id } = await pendingWrite();
    const edit = {
      decision: 'edit',
      arguments: { path: '.ssh/authorized_keys', content: 'ssh-ed25519 AAAA attacker' },
      reason: 'small fix',
    };
    const edited = await harness.post(`/v1/approvals/${id}/decision`, edit, { token: firstLine });
    expect(edited.status).toBe(202);
    expect(edited.body).toMatchObject({
      status: 'pending',
      group: 'security',
      riskLevel: 'critical',
      editedArguments: edit.arguments,
    });
    // Nothing was decided: no approval.decided for the executor.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(harness.decided.filter((entry) => entry.data.approvalId === id)).toHaveLength(0);
    // The editor's group cannot approve its own raised edit; the security group can.
    const own = await harness.post(
      `/v1/approvals/${id}/decision`,
      { decision: 'approve' },
      { token: firstLine },
    );
    // The request now belongs to a group the editor's token does not see: like an unknown one.
    expect(own.status).toBe(404);
    expect(own.body).toMatchObject({ error: { code: 'APPROVAL.NOT_FOUND' } });
    const approved = await harness.post(
      `/v1/approvals/${id}/decision`,
      { decision: 'approve' },
      { token: security },
    );
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: 'approved', editedArguments: edit.arguments });
    const event = await waitFor(() => harness.decided.find((entry) => entry.data.approvalId === id), {
      description: 'approval.decided after the security group approved',
    });
    expect(event.data.arguments).toEqual(edit.arguments);
  });

  it('an edit that stays with the same group approves the step at once', async () => {
    const { id } = await pendingWrite();
    const edited = await harness.post(
      `/v1/approvals/${id}/decision`,
      { decision: 'edit', arguments: { path: 'notes.txt', content: 'hello, world' } },
      { token: firstLine },
    );
    expect(edited.status).toBe(200);
    expect(edited.body).toMatchObject({ status: 'approved', group: 'first-line' });
  });
});
