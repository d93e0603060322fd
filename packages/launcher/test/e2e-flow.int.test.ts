import { randomUUID } from 'node:crypto';
import type { ChatRequestRecord, ScriptedReply } from '@tandem/testing';
import { createTestToken, waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDemoToken, ensureAdminToken } from '../src/index.js';
import { answers, firstUserText, startStack, taskRequested, type Stack } from './harness.js';

/** How many tasks were stored for a CloudEvent id. */
async function tasksWithExternalId(stack: Stack, externalId: string): Promise<number> {
  const { n } = await stack.db.kysely
    .selectFrom('Task')
    .select((eb) => eb.cast<number>(eb.fn.countAll(), 'integer').as('n'))
    .where('externalId', '=', externalId)
    .executeTakeFirstOrThrow();
  return n;
}

const VALID_PLAN: ScriptedReply = {
  toolCalls: [
    {
      name: 'run_code',
      arguments: { language: 'python', code: null, spec: 'Sum input.numbers and set result to the sum.' },
    },
    { name: 'respond', arguments: { answer: 'The sum is {{steps.s1.value}}.' } },
  ],
};

/** The scripted planning and code models; goals carry markers that pick a behaviour. */
function script(request: ChatRequestRecord): ScriptedReply {
  const isPlanning = (request.body.tools ?? []).length > 0;
  const task = firstUserText(request.body.messages);
  if (!isPlanning)
    return {
      content:
        '```python\nresult = sum(input["numbers"])\nprint("summed", len(input["numbers"]), "numbers")\n```',
    };
  const repairing = request.body.messages.some((message) => message.role === 'tool');
  if (task.includes('[always-invalid]'))
    return { toolCalls: [{ name: 'run_code', arguments: '{"language": "python", "code": ' }] };
  if (task.includes('[repair-once]') && !repairing)
    return { toolCalls: [{ name: 'delete_everything', arguments: { path: '/' } }] };
  return VALID_PLAN;
}

describe('a task from another system to a stored result (five processes, real Postgres and NATS)', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ match: script });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('completes a CloudEvent task and stores plan, steps, sandbox run, model calls, result and a pattern', async () => {
    const event = taskRequested({
      goal: 'Add up the numbers',
      input: { numbers: [1, 2, 3, 4] },
      kind: 'arithmetic',
    });
    await stack.publish('task.requested.v1', event);
    const outcome = await stack.waitForOutcome(answers(event), 'task.completed.v1 for the CloudEvent');
    expect(outcome.type).toBe('tandem.task.completed');
    expect(outcome.data.status).toBe('completed');
    expect(outcome.data.result).toMatchObject({ answer: 'The sum is 10.' });
    const taskId = outcome.data.taskId;

    const tasks = await stack.db.kysely
      .selectFrom('Task')
      .select(['status', 'kind', 'source', 'externalId'])
      .where('id', '=', taskId)
      .execute();
    expect(tasks).toEqual([
      { status: 'planned', kind: 'arithmetic', source: 'urn:test:billing', externalId: event['id'] },
    ]);
    const steps = await stack.db.kysely
      .selectFrom('PlanStep as s')
      .innerJoin('Plan as p', 'p.id', 's.planId')
      .innerJoin('StepRun as r', 'r.stepId', 's.id')
      .select(['s.stepKey', 's.tool', 'r.status'])
      .where('p.taskId', '=', taskId)
      .orderBy('s.index')
      .execute();
    expect(steps).toEqual([
      { stepKey: 's1', tool: 'run_code', status: 'completed' },
      { stepKey: 's2', tool: 'respond', status: 'completed' },
    ]);
    const runs = await stack.db.kysely
      .selectFrom('SandboxRun')
      .select(['outcome', 'value', 'language', 'stdout'])
      .where('taskId', '=', taskId)
      .execute();
    expect(runs).toEqual([{ outcome: 'ok', value: 10, language: 'python', stdout: 'summed 4 numbers\n' }]);
    const taskRuns = await stack.db.kysely
      .selectFrom('TaskRun')
      .select(['status', 'result'])
      .where('taskId', '=', taskId)
      .execute();
    expect(taskRuns[0]).toMatchObject({ status: 'completed', result: { answer: 'The sum is 10.' } });
    const calls = await stack.db.kysely
      .selectFrom('ModelCall')
      .select(['role', 'outcome'])
      .where('taskId', '=', taskId)
      .orderBy('role')
      .execute();
    expect(calls).toEqual([
      { role: 'code', outcome: 'ok' },
      { role: 'planning', outcome: 'ok' },
    ]);
    const pattern = await waitFor(
      async () => {
        const rows = await stack.db.kysely
          .selectFrom('LearningPattern')
          .select(['status', 'successCount', 'provenance'])
          .where('type', '=', 'strategy')
          .where('scope', '=', 'kind:arithmetic')
          .execute();
        return rows[0] && rows[0].successCount >= 1 ? rows[0] : undefined;
      },
      { description: 'strategy pattern for kind arithmetic', timeoutMs: 20_000 },
    );
    expect(pattern.status).toBe('active');
    expect(JSON.stringify(pattern.provenance)).toContain(outcome.id);

    const view = await (
      await fetch(`${stack.url('planner')}/v1/tasks/${taskId}`, { headers: stack.auth })
    ).json();
    expect(view).toMatchObject({
      taskId,
      status: 'completed',
      plan: { version: 1 },
      result: { answer: 'The sum is 10.' },
    });
  });

  it('feeds the learned strategy into the next plan of the same kind', async () => {
    const event = taskRequested({
      goal: 'Add up more numbers',
      input: { numbers: [5, 5] },
      kind: 'arithmetic',
    });
    await stack.publish('task.requested.v1', event);
    await stack.waitForOutcome(answers(event), 'second arithmetic task');
    const planningRequests = stack.model.requests.filter(
      (request) =>
        request.body &&
        (request.body.tools ?? []).length > 0 &&
        firstUserText(request.body.messages).includes('Add up more numbers'),
    );
    const system = planningRequests[0]?.body?.messages.find((message) => message.role === 'system');
    expect(typeof system?.content === 'string' && system.content).toContain(
      'What Tandem learned from earlier tasks of this kind',
    );
  });

  it('creates one task for the same event published twice, even outside JetStream’s duplicate window', async () => {
    const event = taskRequested({ goal: 'Add up the numbers once', input: { numbers: [2, 2] } });
    // Different Nats-Msg-Ids: JetStream stores both, so only Postgres can tell they are the same request.
    await stack.publish('task.requested.v1', event, randomUUID());
    await stack.publish('task.requested.v1', event, randomUUID());
    await stack.waitForOutcome(answers(event), 'the duplicated task');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await tasksWithExternalId(stack, String(event['id']))).toBe(1);
    expect(stack.outcomes.filter(answers(event))).toHaveLength(1);

    const conflicting = { ...event, data: { goal: 'Something else entirely' } };
    await stack.publish('task.requested.v1', conflicting, randomUUID());
    const letter = await waitFor(
      async () =>
        (
          await stack.db.kysely
            .selectFrom('DeadLetter')
            .select('code')
            .where('code', '=', 'TASK.IDEMPOTENCY_CONFLICT')
            .where('payload', 'like', `%${String(event['id'])}%`)
            .execute()
        )[0],
      { description: 'conflict dead letter', timeoutMs: 20_000 },
    );
    expect(letter.code).toBe('TASK.IDEMPOTENCY_CONFLICT');
    expect(await tasksWithExternalId(stack, String(event['id']))).toBe(1);
  });

  it('dead-letters garbage with a reason and still completes the next good event', async () => {
    await stack.publish('task.requested.v1', new TextEncoder().encode('{not json'));
    await stack.publish('task.requested.v1', taskRequested({ goal: 'x', colour: 'red' }));
    await stack.publish('task.requested.v1', {
      specversion: '1.0',
      id: 'no-type',
      source: 's',
      data: { goal: 'x' },
    });
    const good = taskRequested({ goal: 'Add up the numbers after garbage', input: { numbers: [7, 8] } });
    await stack.publish('task.requested.v1', good);
    const outcome = await stack.waitForOutcome(answers(good), 'the good event after garbage');
    expect(outcome.data.result).toMatchObject({ answer: 'The sum is 15.' });
    const letters = await waitFor(
      async () => {
        const rows = await stack.db.kysely
          .selectFrom('DeadLetter')
          .select(['code', 'reason'])
          .where('code', 'in', ['BUS.UNPARSEABLE', 'BUS.SCHEMA_INVALID'])
          .orderBy('createdAt')
          .execute();
        return rows.length >= 3 ? rows : undefined;
      },
      { description: 'three dead letters', timeoutMs: 20_000 },
    );
    // The intake handles messages concurrently, so the two schema failures may be stored in either order.
    expect(letters.map((letter: { code: string }) => letter.code).sort()).toEqual([
      'BUS.SCHEMA_INVALID',
      'BUS.SCHEMA_INVALID',
      'BUS.UNPARSEABLE',
    ]);
    expect(letters.some((letter: { reason: string }) => letter.reason.includes('colour'))).toBe(true);
    const { n } = await stack.db.kysely
      .selectFrom('Task')
      .select((eb) => eb.cast<number>(eb.fn.countAll(), 'integer').as('n'))
      .where('goal', '=', 'x')
      .executeTakeFirstOrThrow();
    expect(n).toBe(0);

    // HTTP submissions are stored under a reserved source; a CloudEvent may not borrow it.
    await stack.publish(
      'task.requested.v1',
      taskRequested({ goal: 'borrowed source' }, { source: 'urn:tandem:http' }),
    );
    const reserved = await waitFor(
      async () =>
        (
          await stack.db.kysely
            .selectFrom('DeadLetter')
            .select('code')
            .where('code', '=', 'TASK.RESERVED_SOURCE')
            .execute()
        )[0],
      { description: 'reserved-source dead letter', timeoutMs: 20_000 },
    );
    expect(reserved.code).toBe('TASK.RESERVED_SOURCE');
  });

  it('sends an invalid plan back to the model and stores the repaired one', async () => {
    const response = await fetch(`${stack.url('planner')}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...stack.auth },
      body: JSON.stringify({ goal: 'Add up [repair-once]', input: { numbers: [1, 1] } }),
    });
    expect(response.status).toBe(202);
    const { taskId } = (await response.json()) as { taskId: string };
    const outcome = await stack.waitForOutcome(
      (candidate) => candidate.data.taskId === taskId,
      'the repaired task',
    );
    expect(outcome.data.status).toBe('completed');
    const rows = await stack.db.kysely
      .selectFrom('Plan as p')
      .innerJoin('PlanMetrics as m', 'm.planId', 'p.id')
      .select(['p.attempts', 'm.repairAttempts', 'm.validationErrors'])
      .where('p.taskId', '=', taskId)
      .execute();
    expect(rows).toEqual([{ attempts: 2, repairAttempts: 1, validationErrors: 1 }]);
    const repairRequest = stack.model.requests.find((request) =>
      request.body?.messages.some(
        (message) => message.role === 'tool' && JSON.stringify(message).includes('TOOL.UNKNOWN_FUNCTION'),
      ),
    );
    expect(repairRequest).toBeDefined();
  });

  it('fails the task with the last validation error when the model never produces a valid plan', async () => {
    const response = await fetch(`${stack.url('planner')}/v1/tasks`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...stack.auth,
        'idempotency-key': `invalid-${randomUUID()}`,
      },
      body: JSON.stringify({ goal: 'Never valid [always-invalid]' }),
    });
    const { taskId } = (await response.json()) as { taskId: string };
    const outcome = await stack.waitForOutcome(
      (candidate) => candidate.data.taskId === taskId,
      'the never-valid task',
    );
    expect(outcome.type).toBe('tandem.task.failed');
    expect(outcome.data.error?.code).toBe('TOOL.INVALID_JSON');
    const view = (await (
      await fetch(`${stack.url('planner')}/v1/tasks/${taskId}`, { headers: stack.auth })
    ).json()) as {
      status: string;
      error: { code: string };
    };
    expect(view.status).toBe('failed');
    expect(view.error.code).toBe('TOOL.INVALID_JSON');
  });

  it('answers HTTP submissions idempotently and rejects bad bodies with the zod issues', async () => {
    const key = `key-${randomUUID()}`;
    const post = (body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${stack.url('planner')}/v1/tasks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...stack.auth, ...headers },
        body: JSON.stringify(body),
      });
    const first = (await (
      await post({ goal: 'Add up', input: { numbers: [3] } }, { 'idempotency-key': key })
    ).json()) as { taskId: string };
    const second = (await (
      await post({ goal: 'Add up', input: { numbers: [3] } }, { 'idempotency-key': key })
    ).json()) as { taskId: string };
    expect(second.taskId).toBe(first.taskId);
    const conflict = await post({ goal: 'Different' }, { 'idempotency-key': key });
    expect(conflict.status).toBe(409);
    const bad = await post({ goal: '', extra: true });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { error: { code: string; issues: unknown[] } };
    expect(body.error.code).toBe('HTTP.BAD_REQUEST');
    expect(body.error.issues.length).toBeGreaterThan(0);
    const missing = await fetch(`${stack.url('planner')}/v1/tasks/${randomUUID()}`, { headers: stack.auth });
    expect(missing.status).toBe(404);
    const outcome = await stack.waitForOutcome(
      (candidate) => candidate.data.taskId === first.taskId,
      'the idempotent HTTP task',
    );
    // Keys are scoped per token: the outcome names the token whose key it is.
    const admin = await stack.db.kysely
      .selectFrom('ApiToken')
      .select('id')
      .where('name', '=', 'e2e-admin')
      .execute();
    expect(outcome.data.request).toEqual({ idempotencyKey: key, tokenId: admin[0]?.id });
  });

  it('exposes health, readiness and Prometheus metrics on every service', async () => {
    for (const service of ['planner', 'approval', 'executor', 'sandbox-runner', 'learning'] as const) {
      expect((await fetch(`${stack.url(service)}/healthz`)).status).toBe(200);
      expect((await fetch(`${stack.url(service)}/readyz`)).status).toBe(200);
      const metrics = await (await fetch(`${stack.url(service)}/metrics`)).text();
      expect(metrics).toContain('tandem_messages_handled_total');
    }
    const planner = await (await fetch(`${stack.url('planner')}/metrics`)).text();
    expect(planner).toMatch(/tandem_plans_total\{[^}]*outcome="proposed"[^}]*\} [1-9]/);
    expect(planner).toMatch(/tandem_model_calls_total\{[^}]*role="planning"/);
  });

  it("needs a token on every API of the running services, and takes the launcher's demo token", async () => {
    const taskCount = async () =>
      Number(
        (
          await stack.db.kysely
            .selectFrom('Task')
            .select((eb) => eb.cast<number>(eb.fn.countAll(), 'integer').as('n'))
            .executeTakeFirst()
        )?.n,
      );
    const before = await taskCount();
    const submit = (authorization: string | null, body: Record<string, unknown>) =>
      fetch(`${stack.url('planner')}/v1/tasks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization === null ? {} : { authorization }) },
        body: JSON.stringify(body),
      });
    const revoked = await createTestToken(stack.database.url, {
      role: 'submitter',
      agents: ['*'],
      revoked: true,
    });
    for (const authorization of [null, 'Basic dXNlcjpwYXNz', `Bearer ${revoked.token}`]) {
      const response = await submit(authorization, { goal: 'Add up', input: { numbers: [1] } });
      expect(response.status, String(authorization)).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
    }
    expect((await fetch(`${stack.url('approval')}/v1/approvals?status=pending`)).status).toBe(401);
    const billing = await createTestToken(stack.database.url, { role: 'submitter', agents: ['billing'] });
    const forbidden = await submit(`Bearer ${billing.token}`, { goal: 'Add up', agentId: 'payroll' });
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as { error: { code: string } }).error.code).toBe(
      'AUTH.AGENT_NOT_ALLOWED',
    );
    expect(await taskCount()).toBe(before);

    // The launcher writes tokens without @tandem/service-kit: the services must accept them.
    const demo = await createDemoToken(stack.database.url);
    const accepted = await submit(`Bearer ${demo}`, { goal: 'Add up', input: { numbers: [2, 2] } });
    expect(accepted.status).toBe(202);
    const { taskId } = (await accepted.json()) as { taskId: string };
    const rows = await stack.db.kysely
      .selectFrom('Task as t')
      .innerJoin('ApiToken as k', (join) =>
        join.on((eb) =>
          eb(
            't.submittedBy',
            '=',
            eb.fn<string>('concat', [eb.cast(eb.val('token:'), 'text'), eb.cast('k.id', 'text')]),
          ),
        ),
      )
      .select(['t.submittedBy', 'k.name'])
      .where('t.id', '=', taskId)
      .execute();
    expect(rows).toEqual([{ submittedBy: expect.stringMatching(/^token:/), name: 'demo' }]);
    expect(await ensureAdminToken(stack.database.url)).toMatchObject({ kind: 'exists' });
  });
});
