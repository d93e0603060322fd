import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { ErrorCodes, TaskView } from '@tandem/contracts';
import { createDb, migrate, type Db } from '@tandem/db';
import { createLogger, type HttpServer } from '@tandem/service-kit';
import { createTestDatabase, createTestToken, type TestDatabase } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createPlannerHttp } from './helpers/planner-http.js';
import { approvalRequest, outboxRows, payloadAt, planTask, plansOf, taskCount } from './helpers/rows.js';
import { acceptTask } from '../src/tasks.js';

const ErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
const Accepted = z.object({ taskId: z.uuid() });
const CancelData = z.object({
  data: z.looseObject({ taskId: z.string(), requestedBy: z.string().optional() }),
});
/** Who edited a plan, read loosely so the test runs against a planner without the label field too. */
const PlanLabels = z.object({ plan: z.looseObject({}) });
const ProposedLabels = z.object({ data: z.looseObject({}) });

let database: TestDatabase;
let db: Db;
let app: HttpServer;
let logText: () => string;
const PREFIX = 'test_planner_auth';

/** Tokens of the test: one per role, a submitter per agent scope, and a revoked submitter. */
let tokens: {
  admin: { token: string; id: string };
  approver: { token: string; id: string };
  billing: { token: string; id: string };
  anyAgent: { token: string; id: string };
  revoked: { token: string; id: string };
};

beforeAll(async () => {
  database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
  db = createDb({ url: database.url, poolMax: 4 });
  tokens = {
    admin: await createTestToken(database.url, { role: 'admin', name: 'ops' }),
    approver: await createTestToken(database.url, { role: 'approver', name: 'alice-approver' }),
    billing: await createTestToken(database.url, {
      role: 'submitter',
      name: 'billing-ci',
      agents: ['billing'],
    }),
    anyAgent: await createTestToken(database.url, { role: 'submitter', name: 'platform', agents: ['*'] }),
    revoked: await createTestToken(database.url, {
      role: 'submitter',
      name: 'old',
      agents: ['*'],
      revoked: true,
    }),
  };
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  logText = () => chunks.join('');
  app = createPlannerHttp(db, {
    prefix: PREFIX,
    log: createLogger({ service: 'planner', level: 'trace', destination }),
  });
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
  authorization: string | null,
  payload?: unknown,
): Promise<{ status: number; body: unknown }> {
  const response = await app.inject({
    method,
    url,
    headers: {
      ...(authorization === null ? {} : { authorization }),
      ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
  });
  return { status: response.statusCode, body: response.json() };
}

const bearer = (token: { token: string }) => `Bearer ${token.token}`;
const codeOf = (body: unknown) => ErrorBody.parse(body).error.code;

async function submit(token: { token: string }, data: Record<string, unknown>): Promise<string> {
  const response = await call('POST', '/v1/tasks', bearer(token), data);
  expect(response.status, JSON.stringify(response.body)).toBe(202);
  return Accepted.parse(response.body).taskId;
}

/**
 * A task of `submitter` whose plan (version 1) waits for approval, with an approval request without a
 * group (so approvers without groups reach it): it may be edited and cancelled.
 */
async function plannedTask(submitter: { token: string } = tokens.anyAgent): Promise<string> {
  const taskId = await submit(submitter, { goal: 'an editable task' });
  const planId = await planTask(db, taskId);
  await approvalRequest(db, { taskId, planId });
  return taskId;
}

describe('planner API authentication', () => {
  it('refuses a submission without a valid token (401) and creates no task', async () => {
    const before = await taskCount(db);
    const messages = (await outboxRows(db)).length;
    for (const authorization of [
      null,
      `Basic ${Buffer.from('user:pass').toString('base64')}`,
      `Bearer tdm_${'A'.repeat(43)}`,
      bearer(tokens.revoked),
    ]) {
      const response = await call('POST', '/v1/tasks', authorization, { goal: 'sneak in' });
      expect(response.status, String(authorization)).toBe(401);
      expect(codeOf(response.body)).toBe(ErrorCodes.AUTH_UNAUTHENTICATED);
    }
    expect(await taskCount(db)).toBe(before);
    expect((await outboxRows(db)).length).toBe(messages);
  });

  it('refuses a submission from an approver token (403)', async () => {
    const before = await taskCount(db);
    const response = await call('POST', '/v1/tasks', bearer(tokens.approver), { goal: 'not mine to submit' });
    expect(response.status).toBe(403);
    expect(codeOf(response.body)).toBe(ErrorCodes.AUTH_FORBIDDEN);
    expect(await taskCount(db)).toBe(before);
  });

  it('records the submitting token and lets a submitter name only its own agents', async () => {
    const before = await taskCount(db);
    const refused = await call('POST', '/v1/tasks', bearer(tokens.billing), { goal: 'pay', agentId: 'hr' });
    expect(refused.status).toBe(403);
    expect(codeOf(refused.body)).toBe(ErrorCodes.AUTH_AGENT_NOT_ALLOWED);
    expect(await taskCount(db)).toBe(before);

    const own = await submit(tokens.billing, { goal: 'pay', agentId: 'billing' });
    const plain = await submit(tokens.billing, { goal: 'no agent named' });
    const wildcard = await submit(tokens.anyAgent, { goal: 'anything', agentId: 'hr' });
    const admin = await submit(tokens.admin, { goal: 'admin may', agentId: 'payroll' });
    const rows = await db.kysely
      .selectFrom('Task')
      .select(['id', 'agentId', 'submittedBy'])
      .where('id', 'in', [own, plain, wildcard, admin])
      .execute();
    const byId = new Map(rows.map((row) => [row.id, row]));
    expect(byId.get(own)).toMatchObject({ agentId: 'billing', submittedBy: `token:${tokens.billing.id}` });
    expect(byId.get(plain)).toMatchObject({ agentId: null, submittedBy: `token:${tokens.billing.id}` });
    expect(byId.get(wildcard)).toMatchObject({ agentId: 'hr', submittedBy: `token:${tokens.anyAgent.id}` });
    expect(byId.get(admin)).toMatchObject({ agentId: 'payroll', submittedBy: `token:${tokens.admin.id}` });
  });

  it('leaves submittedBy empty for a task from a CloudEvent', async () => {
    const { taskId } = await acceptTask(
      db,
      {
        source: 'urn:test:billing',
        externalId: randomUUID(),
        request: { source: 'urn:test:billing', id: 'x' },
        data: { goal: 'from NATS' },
      },
      { prefix: PREFIX, causationId: null },
    );
    const stored = await db.kysely
      .selectFrom('Task')
      .select('submittedBy')
      .where('id', '=', taskId)
      .executeTakeFirstOrThrow();
    expect(stored.submittedBy).toBeNull();
  });

  it('lets the tokens that may act on a task read it, and no one without a token', async () => {
    const taskId = await submit(tokens.billing, { goal: 'read me' });
    for (const token of [tokens.billing, tokens.anyAgent, tokens.admin]) {
      const response = await call('GET', `/v1/tasks/${taskId}`, bearer(token));
      expect(response.status).toBe(200);
      expect(TaskView.parse(response.body).taskId).toBe(taskId);
    }
    // No approval request asks the approver about this task yet (see task-tenancy.int.test.ts).
    expect((await call('GET', `/v1/tasks/${taskId}`, bearer(tokens.approver))).status).toBe(404);
    expect((await call('GET', `/v1/tasks/${taskId}`, null)).status).toBe(401);
    expect((await call('GET', `/v1/tasks/${taskId}`, bearer(tokens.revoked))).status).toBe(401);
    // An unknown route answers 401 to a caller without a token, 404 to one with.
    expect((await call('GET', '/v1/nothing', null)).status).toBe(401);
    expect((await call('GET', '/v1/nothing', bearer(tokens.approver))).status).toBe(404);
  });

  it('records the token as the editor of a plan; a name in the body is only a label beside it', async () => {
    const edit = (editedBy?: string) => ({
      steps: [{ id: 'answer', tool: 'respond', arguments: { answer: 'edited' } }],
      ...(editedBy === undefined ? {} : { editedBy }),
    });
    const taskId = await plannedTask();
    const refused = await call('PUT', `/v1/tasks/${taskId}/plan`, bearer(tokens.revoked), edit());
    expect(refused.status).toBe(401);
    expect(await plansOf(db, taskId)).toHaveLength(1);

    // Issue 11, hole 3: the body's name used to win over the token, so "admin" could be forged.
    const other = await plannedTask(tokens.billing);
    const forged = await call('PUT', `/v1/tasks/${other}/plan`, bearer(tokens.billing), edit('admin'));
    expect(forged.status).toBe(200);
    expect(PlanLabels.parse(forged.body).plan).toMatchObject({
      editedBy: `token:${tokens.billing.id}`,
      editedByLabel: 'admin',
    });
    const stored = (await plansOf(db, other)).find((plan) => plan.version === 2);
    expect(stored?.editedBy).toBe(`token:${tokens.billing.id}`);
    // The plan.proposed event (whose editedBy the approval service records as who superseded the old
    // plan's requests) carries the token too, the label beside it.
    const proposed = (await outboxRows(db, 'plan.proposed.v1')).filter(
      (row) => payloadAt(row.payload, ['data', 'taskId']) === other,
    );
    expect(proposed).toHaveLength(1);
    expect(ProposedLabels.parse(proposed[0]?.payload).data).toMatchObject({
      editedBy: `token:${tokens.billing.id}`,
      editedByLabel: 'admin',
    });

    const byToken = await call('PUT', `/v1/tasks/${taskId}/plan`, bearer(tokens.approver), edit());
    expect(byToken.status, JSON.stringify(byToken.body)).toBe(200);
    expect(PlanLabels.parse(byToken.body).plan).toMatchObject({
      editedBy: `token:${tokens.approver.id}`,
      editedByLabel: null,
    });
  });

  it('cancels for submitters and approvers, recording the token; a name in the body is only a label', async () => {
    const taskId = await plannedTask(tokens.billing);
    const cancels = 'task.cancel-requested.v1';
    expect((await call('POST', `/v1/tasks/${taskId}/cancel`, null, {})).status).toBe(401);
    expect(await outboxRows(db, cancels)).toHaveLength(0);

    expect((await call('POST', `/v1/tasks/${taskId}/cancel`, bearer(tokens.billing), {})).status).toBe(202);
    expect(
      (await call('POST', `/v1/tasks/${taskId}/cancel`, bearer(tokens.approver), { requestedBy: 'admin' }))
        .status,
    ).toBe(202);
    const rows = await outboxRows(db, cancels);
    expect(rows.map((row) => CancelData.parse(row.payload).data)).toEqual([
      { taskId, requestedBy: `token:${tokens.billing.id}` },
      { taskId, requestedBy: `token:${tokens.approver.id}`, requestedByLabel: 'admin' },
    ]);
  });

  it('keeps the probes open and writes no token to the log', async () => {
    for (const url of ['/healthz', '/readyz', '/metrics'])
      expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
    const text = logText();
    for (const token of Object.values(tokens)) expect(text).not.toContain(token.token);
  });
});
