import { randomUUID } from 'node:crypto';
import { ErrorCodes, TaskView } from '@tandem/contracts';
import { createDb, migrate, type Db } from '@tandem/db';
import type { HttpServer } from '@tandem/service-kit';
import { createTestDatabase, createTestToken, type TestDatabase } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createPlannerHttp } from './helpers/planner-http.js';
import {
  approvalRequest as storeApprovalRequest,
  outboxRows,
  payloadAt,
  planTask,
  plansOf,
} from './helpers/rows.js';

// Issue 11, hole 2: a token scoped to agent A could read, edit and cancel agent B's task, because the
// task routes checked the token's role and not its agents. Every task route now answers a task the
// token may not reach exactly like a task that does not exist (404 TASK.NOT_FOUND).

const ErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
const Accepted = z.object({ taskId: z.uuid() });

let database: TestDatabase;
let db: Db;
let app: HttpServer;
const PREFIX = 'test_planner_tenancy';

interface TestToken {
  token: string;
  id: string;
}

let tokens: {
  admin: TestToken;
  agentA: TestToken;
  agentB: TestToken;
  /** A second token of agent B: a task with an agent belongs to every token of that agent. */
  agentBToo: TestToken;
  anyAgent: TestToken;
  financeApprover: TestToken;
  securityApprover: TestToken;
  grouplessApprover: TestToken;
};

beforeAll(async () => {
  database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
  db = createDb({ url: database.url, poolMax: 4 });
  const submitter = (name: string, agents: string[]) =>
    createTestToken(database.url, { role: 'submitter', name, agents });
  const approver = (name: string, groups: string[]) =>
    createTestToken(database.url, { role: 'approver', name, groups });
  tokens = {
    admin: await createTestToken(database.url, { role: 'admin', name: 'ops' }),
    agentA: await submitter('agent-a-ci', ['agent-a']),
    agentB: await submitter('agent-b-ci', ['agent-b']),
    agentBToo: await submitter('agent-b-cron', ['agent-b']),
    anyAgent: await submitter('platform', ['*']),
    financeApprover: await approver('finance-approver', ['finance']),
    securityApprover: await approver('security-approver', ['security']),
    grouplessApprover: await approver('any-approver', []),
  };
  app = createPlannerHttp(db, { prefix: PREFIX });
  await app.ready();
}, 60_000);

afterAll(async () => {
  await app?.close();
  await db?.close();
  await database?.drop();
});

async function call(
  method: 'GET' | 'POST' | 'PUT',
  url: string,
  token: TestToken,
  payload?: unknown,
): Promise<{ status: number; body: unknown }> {
  const response = await app.inject({
    method,
    url,
    headers: {
      authorization: `Bearer ${token.token}`,
      ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
  });
  return { status: response.statusCode, body: response.json() };
}

async function submit(token: TestToken, data: Record<string, unknown>): Promise<string> {
  const response = await call('POST', '/v1/tasks', token, data);
  expect(response.status, JSON.stringify(response.body)).toBe(202);
  return Accepted.parse(response.body).taskId;
}

/** A task (submitted by `token`) whose plan version 1 waits for approval: editable and cancellable. */
async function plannedTask(token: TestToken, agentId?: string): Promise<{ taskId: string; planId: string }> {
  const taskId = await submit(token, {
    goal: 'an editable task',
    ...(agentId === undefined ? {} : { agentId }),
  });
  const planId = await planTask(db, taskId);
  return { taskId, planId };
}

/** An approval request of the task for `group` (null: no group), as the approval service stores it. */
async function approvalRequest(task: { taskId: string; planId: string }, group: string | null) {
  await storeApprovalRequest(db, task, group);
}

const WRITE_INTO_PLAN = {
  steps: [
    { id: 'plant', tool: 'write_file', arguments: { path: 'notes.txt', content: 'from agent A' } },
    { id: 'answer', tool: 'respond', arguments: { answer: 'done' }, dependsOn: ['plant'] },
  ],
};

const cancelsOf = async (taskId: string) =>
  (await outboxRows(db, 'task.cancel-requested.v1')).filter(
    (row) => payloadAt(row.payload, ['subject']) === taskId,
  ).length;

/** What each task route answers `token` for `taskId` (the edit and cancel change nothing when refused). */
async function reach(
  token: TestToken,
  taskId: string,
): Promise<{ read: number; edit: number; cancel: number }> {
  const read = await call('GET', `/v1/tasks/${taskId}`, token);
  const plans = (await plansOf(db, taskId)).length;
  const edit = await call('PUT', `/v1/tasks/${taskId}/plan`, token, {
    steps: [{ id: 'answer', tool: 'respond', arguments: { answer: 'edited' } }],
  });
  if (edit.status !== 200) expect(await plansOf(db, taskId)).toHaveLength(plans);
  const cancels = await cancelsOf(taskId);
  const cancel = await call('POST', `/v1/tasks/${taskId}/cancel`, token, {});
  if (cancel.status !== 202) expect(await cancelsOf(taskId)).toBe(cancels);
  return { read: read.status, edit: edit.status, cancel: cancel.status };
}

const ALL = { read: 200, edit: 200, cancel: 202 };
const NONE = { read: 404, edit: 404, cancel: 404 };

describe('task routes check the token against the task (hole 2)', () => {
  it("refuses agent A's token an edit of agent B's pending plan, and stores nothing", async () => {
    const task = await plannedTask(tokens.agentB, 'agent-b');
    const response = await call('PUT', `/v1/tasks/${task.taskId}/plan`, tokens.agentA, WRITE_INTO_PLAN);
    expect(response.status).toBe(404);
    expect(ErrorBody.parse(response.body).error.code).toBe(ErrorCodes.TASK_NOT_FOUND);
    const plans = await plansOf(db, task.taskId);
    expect(plans.map((plan) => [plan.version, plan.status])).toEqual([[1, 'active']]);
    expect(
      (await outboxRows(db, 'plan.proposed.v1')).filter(
        (row) => payloadAt(row.payload, ['data', 'taskId']) === task.taskId,
      ),
    ).toEqual([]);
  });

  it("refuses agent A's token a read and a cancel of agent B's task, like a task that does not exist", async () => {
    const task = await plannedTask(tokens.agentB, 'agent-b');
    const read = await call('GET', `/v1/tasks/${task.taskId}`, tokens.agentA);
    const unknownId = randomUUID();
    const unknown = await call('GET', `/v1/tasks/${unknownId}`, tokens.agentA);
    expect(read.status).toBe(404);
    expect(unknown.status).toBe(404);
    // The answer does not tell an existing task of another agent from no task at all.
    expect(JSON.stringify(read.body).replace(task.taskId, 'ID')).toBe(
      JSON.stringify(unknown.body).replace(unknownId, 'ID'),
    );
    const cancel = await call('POST', `/v1/tasks/${task.taskId}/cancel`, tokens.agentA, {
      reason: 'not yours',
    });
    expect(cancel.status).toBe(404);
    expect(ErrorBody.parse(cancel.body).error.code).toBe(ErrorCodes.TASK_NOT_FOUND);
    expect(await cancelsOf(task.taskId)).toBe(0);
  });

  it('lets every token of the agent, a `*` token and an admin read, edit and cancel', async () => {
    for (const token of [tokens.agentB, tokens.agentBToo, tokens.anyAgent, tokens.admin]) {
      const task = await plannedTask(tokens.agentB, 'agent-b');
      expect(await reach(token, task.taskId)).toEqual(ALL);
    }
  });

  it('gives a task without an agent to the token that submitted it, `*` tokens and admins only', async () => {
    const own = await plannedTask(tokens.agentA);
    expect(await reach(tokens.agentB, own.taskId)).toEqual(NONE);
    expect(await reach(tokens.agentA, own.taskId)).toEqual(ALL);
    for (const token of [tokens.anyAgent, tokens.admin]) {
      const task = await plannedTask(tokens.agentA);
      expect(await reach(token, task.taskId)).toEqual(ALL);
    }
    // A task from NATS (no submitting token) and without an agent: `*` tokens and admins.
    const fromNats = await plannedTask(tokens.agentA);
    await db.kysely
      .updateTable('Task')
      .set({ submittedBy: null })
      .where('id', '=', fromNats.taskId)
      .execute();
    expect(await reach(tokens.agentA, fromNats.taskId)).toEqual(NONE);
    expect((await call('GET', `/v1/tasks/${fromNats.taskId}`, tokens.anyAgent)).status).toBe(200);
  });

  it('lets approvers reach a task through the approval requests of their groups only', async () => {
    const finance = await plannedTask(tokens.agentB, 'agent-b');
    await approvalRequest(finance, 'finance');
    expect(await reach(tokens.securityApprover, finance.taskId)).toEqual(NONE);
    expect(await reach(tokens.grouplessApprover, finance.taskId)).toEqual(NONE);
    expect(await reach(tokens.financeApprover, finance.taskId)).toEqual(ALL);

    const groupless = await plannedTask(tokens.agentB, 'agent-b');
    await approvalRequest(groupless, null);
    expect(await reach(tokens.financeApprover, groupless.taskId)).toEqual(NONE);
    expect(await reach(tokens.grouplessApprover, groupless.taskId)).toEqual(ALL);

    // Before the approval service asked anyone, no approver reaches the task.
    const unasked = await plannedTask(tokens.agentB, 'agent-b');
    expect((await call('GET', `/v1/tasks/${unasked.taskId}`, tokens.grouplessApprover)).status).toBe(404);
    expect(TaskView.parse((await call('GET', `/v1/tasks/${unasked.taskId}`, tokens.admin)).body).taskId).toBe(
      unasked.taskId,
    );
  });
});

describe('idempotency keys are scoped per token', () => {
  async function submitWithKey(token: TestToken, key: string, goal: string) {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/tasks',
      headers: {
        authorization: `Bearer ${token.token}`,
        'content-type': 'application/json',
        'idempotency-key': key,
      },
      payload: JSON.stringify({ goal }),
    });
    return { status: response.statusCode, body: response.json<unknown>() };
  }

  it('makes one task per token for the same key; the same key again from the same token is the same task', async () => {
    const key = `order-${randomUUID()}`;
    const first = await submitWithKey(tokens.agentA, key, 'same body');
    const again = await submitWithKey(tokens.agentA, key, 'same body');
    const other = await submitWithKey(tokens.agentB, key, 'same body');
    expect([first.status, again.status, other.status]).toEqual([202, 202, 202]);
    const firstId = Accepted.parse(first.body).taskId;
    expect(Accepted.parse(again.body).taskId).toBe(firstId);
    const otherId = Accepted.parse(other.body).taskId;
    expect(otherId).not.toBe(firstId);
    // Each token reads its own task only, and sees its own key.
    expect((await call('GET', `/v1/tasks/${otherId}`, tokens.agentA)).status).toBe(404);
    const view = TaskView.parse((await call('GET', `/v1/tasks/${otherId}`, tokens.agentB)).body);
    expect(view.request).toEqual({ source: 'urn:tandem:http', id: key });
    // The request the task's events carry tells the two tokens' keys apart.
    const accepted = (await outboxRows(db, 'task.accepted.v1')).filter(
      (row) => payloadAt(row.payload, ['data', 'request', 'idempotencyKey']) === key,
    );
    const requests = accepted.map(
      (row) => z.object({ data: z.object({ request: z.unknown() }) }).parse(row.payload).data.request,
    );
    expect(requests).toEqual(
      expect.arrayContaining([
        { idempotencyKey: key, tokenId: tokens.agentA.id },
        { idempotencyKey: key, tokenId: tokens.agentB.id },
      ]),
    );
    expect(requests).toHaveLength(2);
  });

  it('does not tell a token that another token used its key (no conflict across tokens)', async () => {
    const key = `order-${randomUUID()}`;
    expect((await submitWithKey(tokens.agentA, key, 'pay invoice 1')).status).toBe(202);
    const other = await submitWithKey(tokens.agentB, key, 'pay invoice 2');
    expect(other.status).toBe(202);
    const conflict = await submitWithKey(tokens.agentA, key, 'pay invoice 3');
    expect(conflict.status).toBe(409);
    expect(ErrorBody.parse(conflict.body).error.code).toBe(ErrorCodes.TASK_CONFLICT);
  });
});
