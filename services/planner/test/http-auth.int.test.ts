import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { ErrorCodes, TaskView } from '@tandem/contracts';
import { createDb, migrate, type Db } from '@tandem/db';
import { createLogger, type HttpServer } from '@tandem/service-kit';
import { createTestDatabase, createTestToken, type TestDatabase } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createPlannerHttp } from './helpers/planner-http.js';
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
  await db.prisma.task.update({ where: { id: taskId }, data: { status: 'planned' } });
  const planId = randomUUID();
  await db.prisma.plan.create({ data: { id: planId, taskId, version: 1, status: 'active' } });
  await db.prisma.planStep.create({
    data: {
      id: randomUUID(),
      planId,
      stepKey: 's1',
      index: 0,
      dependsOn: [],
      tool: 'respond',
      arguments: { answer: 'draft' },
      riskClass: 'read',
      idempotencyKey: `${planId}:s1`,
    },
  });
  await db.prisma.approvalRequest.create({
    data: { id: randomUUID(), taskId, planId, mode: 'human', status: 'pending' },
  });
  return taskId;
}

describe('planner API authentication', () => {
  it('refuses a submission without a valid token (401) and creates no task', async () => {
    const before = await db.prisma.task.count();
    const messages = await db.prisma.outbox.count();
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
    expect(await db.prisma.task.count()).toBe(before);
    expect(await db.prisma.outbox.count()).toBe(messages);
  });

  it('refuses a submission from an approver token (403)', async () => {
    const before = await db.prisma.task.count();
    const response = await call('POST', '/v1/tasks', bearer(tokens.approver), { goal: 'not mine to submit' });
    expect(response.status).toBe(403);
    expect(codeOf(response.body)).toBe(ErrorCodes.AUTH_FORBIDDEN);
    expect(await db.prisma.task.count()).toBe(before);
  });

  it('records the submitting token and lets a submitter name only its own agents', async () => {
    const before = await db.prisma.task.count();
    const refused = await call('POST', '/v1/tasks', bearer(tokens.billing), { goal: 'pay', agentId: 'hr' });
    expect(refused.status).toBe(403);
    expect(codeOf(refused.body)).toBe(ErrorCodes.AUTH_AGENT_NOT_ALLOWED);
    expect(await db.prisma.task.count()).toBe(before);

    const own = await submit(tokens.billing, { goal: 'pay', agentId: 'billing' });
    const plain = await submit(tokens.billing, { goal: 'no agent named' });
    const wildcard = await submit(tokens.anyAgent, { goal: 'anything', agentId: 'hr' });
    const admin = await submit(tokens.admin, { goal: 'admin may', agentId: 'payroll' });
    const rows = await db.prisma.task.findMany({
      where: { id: { in: [own, plain, wildcard, admin] } },
      select: { id: true, agentId: true, submittedBy: true },
    });
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
    expect((await db.prisma.task.findUniqueOrThrow({ where: { id: taskId } })).submittedBy).toBeNull();
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
    expect(await db.prisma.plan.count({ where: { taskId } })).toBe(1);

    // Issue 11, hole 3: the body's name used to win over the token, so "admin" could be forged.
    const other = await plannedTask(tokens.billing);
    const forged = await call('PUT', `/v1/tasks/${other}/plan`, bearer(tokens.billing), edit('admin'));
    expect(forged.status).toBe(200);
    expect(PlanLabels.parse(forged.body).plan).toMatchObject({
      editedBy: `token:${tokens.billing.id}`,
      editedByLabel: 'admin',
    });
    const stored = await db.prisma.plan.findFirstOrThrow({ where: { taskId: other, version: 2 } });
    expect(stored.editedBy).toBe(`token:${tokens.billing.id}`);
    // The plan.proposed event (whose editedBy the approval service records as who superseded the old
    // plan's requests) carries the token too, the label beside it.
    const proposed = await db.prisma.outbox.findFirstOrThrow({
      where: {
        subject: { endsWith: 'plan.proposed.v1' },
        payload: { path: ['data', 'taskId'], equals: other },
      },
    });
    expect(ProposedLabels.parse(proposed.payload).data).toMatchObject({
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
    const cancels = { subject: { endsWith: 'task.cancel-requested.v1' } };
    expect((await call('POST', `/v1/tasks/${taskId}/cancel`, null, {})).status).toBe(401);
    expect(await db.prisma.outbox.count({ where: cancels })).toBe(0);

    expect((await call('POST', `/v1/tasks/${taskId}/cancel`, bearer(tokens.billing), {})).status).toBe(202);
    expect(
      (await call('POST', `/v1/tasks/${taskId}/cancel`, bearer(tokens.approver), { requestedBy: 'admin' }))
        .status,
    ).toBe(202);
    const rows = await db.prisma.outbox.findMany({ where: cancels, orderBy: { seq: 'asc' } });
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
