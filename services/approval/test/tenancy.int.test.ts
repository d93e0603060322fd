import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { ApprovalView, ErrorCodes } from '@tandem/contracts';
import { createTestToken } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createHarness, type Harness } from './harness.js';
import { requestWhere, storeStepRun } from './helpers/rows.js';

// Issue 11, item 4: approver tokens that list groups see and decide only those groups' requests; an
// approver token without groups sees and decides only requests without a group; admins everything.
// A request (or a step) the token may not see is answered like one that does not exist (404).

const ApprovalList = z.object({ approvals: z.array(ApprovalView) });
const ErrorBody = z.object({ error: z.object({ code: z.string() }) });

/** run_code asks finance or security by its code; any other run_code asks a human without a group. */
const POLICY = `
version: test-tenancy-1
defaults: { deadline: 1h, onExpiry: reject, reminderBefore: 0 }
rules:
  - { id: finance-code, effect: ask, tools: [run_code], arguments: { code: 'finance' }, group: finance }
  - { id: security-code, effect: ask, tools: [run_code], arguments: { code: 'security' }, group: security }
  - { id: other-code, effect: ask, tools: [run_code] }
`;

let harness: Harness;
let directory: string;
let tokens: { finance: string; security: string; groupless: string; admin: string };

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'tandem-tenancy-'));
  const file = join(directory, 'policy.yaml');
  await writeFile(file, POLICY);
  harness = await createHarness({ env: { TANDEM_APPROVAL_POLICY: file } });
  const approver = async (name: string, groups: string[]) =>
    (await createTestToken(harness.database.url, { role: 'approver', name, groups })).token;
  tokens = {
    finance: await approver('finance-approver', ['finance']),
    security: await approver('security-approver', ['security']),
    groupless: harness.tokens.approver,
    admin: harness.tokens.admin,
  };
});

afterAll(async () => {
  await harness?.close();
  await rm(directory, { recursive: true, force: true });
});

/**
 * A task whose one step, a run_code, waits for `group` (null: no group); returns its request. (One step
 * only: a policy-decided step's request has no group, so approvers without groups would reach the task
 * through it.)
 */
async function pending(
  group: 'finance' | 'security' | null,
): Promise<{ id: string; taskId: string; stepId: string }> {
  const task = await harness.seedTask();
  const plan = await harness.seedPlan(task, 1, [
    {
      tool: 'run_code',
      arguments: { language: 'python', code: `result = '${group ?? 'other'}'` },
      riskClass: 'compute',
    },
  ]);
  await harness.proposeAndWait(plan);
  const row = await requestWhere(harness.runtime.db, { planId: plan.planId, tool: 'run_code' });
  expect(row).toMatchObject({ status: 'pending', approverGroup: group });
  return { id: row.id, taskId: task.taskId, stepId: row.stepId ?? '' };
}

async function listed(token: string, taskIds: string[]): Promise<string[]> {
  const response = await harness.get('/v1/approvals?status=pending&limit=500', { token });
  expect(response.status).toBe(200);
  return ApprovalList.parse(response.body)
    .approvals.filter((approval) => taskIds.includes(approval.taskId))
    .map((approval) => approval.id)
    .sort();
}

describe('approver groups decide what an approver token sees and decides', () => {
  let finance: Awaited<ReturnType<typeof pending>>;
  let security: Awaited<ReturnType<typeof pending>>;
  let groupless: Awaited<ReturnType<typeof pending>>;

  beforeAll(async () => {
    finance = await pending('finance');
    security = await pending('security');
    groupless = await pending(null);
  });

  it('lists only the requests of the groups the token sees', async () => {
    const tasks = [finance.taskId, security.taskId, groupless.taskId];
    expect(await listed(tokens.finance, tasks)).toEqual([finance.id]);
    expect(await listed(tokens.security, tasks)).toEqual([security.id]);
    expect(await listed(tokens.groupless, tasks)).toEqual([groupless.id]);
    expect(await listed(tokens.admin, tasks)).toEqual([finance.id, security.id, groupless.id].sort());
    // Asking for another group's task by id lists nothing either.
    const byTask = await harness.get(`/v1/approvals?taskId=${finance.taskId}`, { token: tokens.security });
    expect(ApprovalList.parse(byTask.body).approvals).toEqual([]);
  });

  it('answers a request of another group like an unknown one (404), for reading', async () => {
    for (const [token, request] of [
      [tokens.security, finance],
      [tokens.groupless, finance],
      [tokens.finance, groupless],
    ] as const) {
      const response = await harness.get(`/v1/approvals/${request.id}`, { token });
      expect(response.status).toBe(404);
      expect(ErrorBody.parse(response.body).error.code).toBe(ErrorCodes.APPROVAL_NOT_FOUND);
    }
    const unknown = await harness.get(`/v1/approvals/${randomUUID()}`, { token: tokens.finance });
    expect(unknown.status).toBe(404);
    for (const [token, request] of [
      [tokens.finance, finance],
      [tokens.groupless, groupless],
      [tokens.admin, security],
    ] as const) {
      const response = await harness.get(`/v1/approvals/${request.id}`, { token });
      expect(response.status).toBe(200);
      expect(ApprovalView.parse(response.body).id).toBe(request.id);
    }
  });

  it('lets no approver without groups, nor one of another group, decide a request (404, nothing decided)', async () => {
    const target = await pending('finance');
    for (const token of [tokens.groupless, tokens.security]) {
      const response = await harness.post(
        `/v1/approvals/${target.id}/decision`,
        { decision: 'approve' },
        { token },
      );
      expect(response.status).toBe(404);
      expect(ErrorBody.parse(response.body).error.code).toBe(ErrorCodes.APPROVAL_NOT_FOUND);
    }
    const row = await requestWhere(harness.runtime.db, { id: target.id });
    expect(row).toMatchObject({ status: 'pending', decidedBy: null });
    const byFinance = await harness.post(
      `/v1/approvals/${target.id}/decision`,
      { decision: 'approve' },
      { token: tokens.finance },
    );
    expect(byFinance.status).toBe(200);
    expect(byFinance.body).toMatchObject({ status: 'approved', decidedBy: 'token:finance-approver' });
  });

  it('lets a finance approver not decide a group-less request, and an admin decide any', async () => {
    const target = await pending(null);
    const refused = await harness.post(
      `/v1/approvals/${target.id}/decision`,
      { decision: 'reject', reason: 'not mine' },
      { token: tokens.finance },
    );
    expect(refused.status).toBe(404);
    const other = await pending('security');
    for (const request of [target, other]) {
      const response = await harness.post(
        `/v1/approvals/${request.id}/decision`,
        { decision: 'approve' },
        { token: tokens.admin },
      );
      expect(response.status).toBe(200);
    }
  });

  it('reverts a step only for approvers that reach its task through their groups, and admins', async () => {
    const target = await pending('finance');
    await harness.post(
      `/v1/approvals/${target.id}/decision`,
      { decision: 'approve' },
      { token: tokens.finance },
    );
    await storeStepRun(harness.runtime.db, {
      stepId: target.stepId,
      taskId: target.taskId,
      status: 'completed',
    });
    for (const token of [tokens.security, tokens.groupless]) {
      const response = await harness.post(
        `/v1/steps/${target.stepId}/revert`,
        { reason: 'not mine' },
        { token },
      );
      expect(response.status).toBe(404);
      expect(ErrorBody.parse(response.body).error.code).toBe(ErrorCodes.STEP_NOT_FOUND);
    }
    const row = await requestWhere(harness.runtime.db, { id: target.id });
    expect(row.revertedAt).toBeNull();
    const reverted = await harness.post(
      `/v1/steps/${target.stepId}/revert`,
      { reason: 'wrong numbers' },
      { token: tokens.finance },
    );
    expect(reverted.status).toBe(200);

    const second = await pending('security');
    await harness.post(
      `/v1/approvals/${second.id}/decision`,
      { decision: 'approve' },
      { token: tokens.admin },
    );
    await storeStepRun(harness.runtime.db, {
      stepId: second.stepId,
      taskId: second.taskId,
      status: 'completed',
    });
    const byAdmin = await harness.post(
      `/v1/steps/${second.stepId}/revert`,
      { reason: 'admin says so' },
      { token: tokens.admin },
    );
    expect(byAdmin.status).toBe(200);
  });
});
