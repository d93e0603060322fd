import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChatRequestRecord, ScriptedModelServer, ScriptedReply } from '@tandem/testing';
import { TaskView } from '@tandem/contracts';
import { createScriptedModelServer, waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  allowToolsPolicy,
  answers,
  firstUserText,
  startStack,
  taskRequested,
  type Stack,
} from './harness.js';

/** A local service that http_request steps call (allowed by an explicit opt-in for 127.0.0.1). */
let echoUrl = '';
const ECHO_SECRET = 'tok-secret-value-42';
const echoed: Array<{ authorization: string | undefined; idempotencyKey: string | undefined; body: string }> =
  [];

/** The planning and code models of these tests; markers in the goal pick a behaviour. */
function script(request: ChatRequestRecord): ScriptedReply {
  const messages = request.body.messages;
  const planning = (request.body.tools ?? []).length > 0;
  const task = firstUserText(messages);
  const all = messages
    .map((message) => (typeof message.content === 'string' ? message.content : ''))
    .join('\n');
  if (!planning) {
    if (all.includes('SANDBOX.MEMORY_LIMIT')) return { content: '```python\nresult = 1\n```' };
    if (all.includes('[fix-me]') || all.includes('Divide 84 by two')) {
      // The first program divides by zero; the fix request carries the error and gets a working program.
      return all.includes('It failed in the sandbox')
        ? { content: '```python\nresult = 84 // 2\n```' }
        : { content: '```python\nresult = 84 // 0\n```' };
    }
    return { content: '```python\nresult = sum(input["numbers"])\n```' };
  }
  if (
    task.includes('[prose]') &&
    !messages.some((message) => message.role === 'user' && String(message.content).startsWith('Rejected'))
  )
    return { content: 'I would first compute the sum and then answer.' };
  if (task.includes('[fix-me]'))
    return {
      toolCalls: [
        {
          name: 'run_code',
          arguments: {
            language: 'python',
            code: null,
            spec: 'Divide 84 by two.',
            dependsOn: null,
            rationale: 'compute',
          },
        },
        {
          name: 'respond',
          arguments: { answer: 'Half is {{steps.s1.value}}.', dependsOn: ['s1'], rationale: null },
        },
      ],
    };
  if (task.includes('[memory]'))
    return {
      toolCalls: [
        {
          name: 'run_code',
          arguments: {
            language: 'python',
            code: 'big = bytearray(900 * 1024 * 1024)\nresult = len(big)',
            spec: null,
            dependsOn: null,
            rationale: null,
          },
        },
        {
          name: 'respond',
          arguments: { answer: 'Got {{steps.s1.value}}.', dependsOn: null, rationale: null },
        },
      ],
    };
  if (task.includes('[replan]')) {
    const replanning = all.includes('failed at step');
    return {
      toolCalls: [
        {
          name: 'run_code',
          arguments: {
            language: 'python',
            code: replanning ? 'result = 2 + 2' : 'raise ValueError("broken on purpose")',
            spec: null,
            dependsOn: null,
            rationale: null,
          },
        },
        {
          name: 'respond',
          arguments: { answer: 'Got {{steps.s1.value}}.', dependsOn: null, rationale: null },
        },
      ],
    };
  }
  if (task.includes('[files-in-code]'))
    return {
      toolCalls: [
        {
          name: 'write_file',
          arguments: { path: 'data/in.json', content: '[3, 4, 5]', dependsOn: null, rationale: null },
        },
        {
          name: 'run_code',
          arguments: {
            language: 'python',
            code: 'import json\nnumbers = json.load(open("data/in.json"))\nopen("data/out.txt", "w").write(str(sum(numbers)))\nresult = len(numbers)',
            spec: null,
            dependsOn: ['s1'],
            rationale: null,
          },
        },
        { name: 'read_file', arguments: { path: 'data/out.txt', dependsOn: ['s2'], rationale: null } },
        {
          name: 'respond',
          arguments: {
            answer: '{{steps.s2.value}} numbers, total {{steps.s3.value.content}}',
            dependsOn: null,
            rationale: null,
          },
        },
      ],
    };
  if (task.includes('[copy]'))
    return {
      toolCalls: [
        {
          name: 'write_file',
          arguments: { path: 'src.txt', content: 'hello values', dependsOn: null, rationale: null },
        },
        { name: 'read_file', arguments: { path: 'src.txt', dependsOn: ['s1'], rationale: null } },
        {
          name: 'write_file',
          arguments: {
            path: 'copy.txt',
            content: 'copy: {{steps.s2.value.content}}',
            dependsOn: ['s2'],
            rationale: null,
          },
        },
        {
          name: 'respond',
          arguments: { answer: 'Copied {{steps.s3.value.size}} bytes', dependsOn: null, rationale: null },
        },
      ],
    };
  if (task.includes('[http]'))
    return {
      toolCalls: [
        {
          name: 'http_request',
          arguments: {
            method: 'POST',
            url: `${echoUrl}/v1/echo`,
            headers: [{ name: 'Authorization', secret: 'ECHO_TOKEN', value: null }],
            body: '{"ping":true}',
            dependsOn: null,
            rationale: null,
          },
        },
        {
          name: 'respond',
          arguments: {
            answer: 'Status {{steps.s1.value.status}}, echoed {{steps.s1.value.json.authorization}}',
            dependsOn: null,
            rationale: null,
          },
        },
      ],
    };
  if (task.includes('[workspace]'))
    return {
      toolCalls: [
        {
          name: 'write_file',
          arguments: {
            path: 'notes/greeting.txt',
            content: 'hello from s1',
            dependsOn: null,
            rationale: null,
          },
        },
        { name: 'read_file', arguments: { path: 'notes/greeting.txt', dependsOn: ['s1'], rationale: null } },
        { name: 'list_files', arguments: { prefix: 'notes', dependsOn: ['s1'], rationale: null } },
        {
          name: 'respond',
          arguments: { answer: 'Read: {{steps.s2.value.content}}', dependsOn: null, rationale: null },
        },
      ],
    };
  return {
    toolCalls: [
      {
        name: 'run_code',
        arguments: {
          language: 'python',
          code: null,
          spec: 'Sum input.numbers.',
          dependsOn: null,
          rationale: null,
        },
      },
      {
        name: 'respond',
        arguments: { answer: 'The sum is {{steps.s1.value}}.', dependsOn: ['s1'], rationale: null },
      },
    ],
  };
}

describe('dual-model planning and execution (five processes, real Postgres and NATS)', () => {
  let stack: Stack;
  let broken: ScriptedModelServer;
  let dir: string;

  let echo: Server;

  beforeAll(async () => {
    echo = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const authorization = request.headers['authorization'];
        const key = request.headers['idempotency-key'];
        echoed.push({
          authorization: typeof authorization === 'string' ? authorization : undefined,
          idempotencyKey: typeof key === 'string' ? key : undefined,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        response.setHeader('content-type', 'application/json');
        response.end(JSON.stringify({ authorization: authorization ?? null }));
      });
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const address = echo.address();
    echoUrl = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
    // The first planning candidate answers 429, then 500, then too slowly; the second one works.
    let calls = 0;
    broken = await createScriptedModelServer({
      match: () => {
        calls += 1;
        if (calls === 1) return { status: 429, error: 'slow down', retryAfter: 0 };
        if (calls === 2) return { status: 500, error: 'internal' };
        return { delayMs: 5_000 };
      },
    });
    dir = await mkdtemp(join(tmpdir(), 'tandem-models-'));
    stack = await startStack({
      match: script,
      // The workspace tools and the echo service on 127.0.0.1 are allowed by a written rule (an IP host
      // and external side effects would otherwise always ask a human).
      policy: allowToolsPolicy(['write_file', 'read_file', 'list_files', 'http_request']),
      env: {
        TANDEM_MODELS_FILE: join(dir, 'models.json'),
        TANDEM_CODE_FIX_ATTEMPTS: '2',
        TANDEM_MAX_REPLANS: '1',
        TANDEM_AUTO_APPROVE: 'read,compute,write,network',
        TANDEM_HTTP_ALLOW_HOSTS: '127.0.0.1',
        TANDEM_HTTP_ALLOW_PRIVATE_CIDRS: '127.0.0.1/32',
        TANDEM_HTTP_ALLOW_HTTP: 'true',
        TANDEM_SECRET_ECHO_TOKEN: ECHO_SECRET,
      },
      beforeStart: async (modelUrl) => {
        await writeFile(
          join(dir, 'models.json'),
          JSON.stringify({
            candidates: [
              {
                id: 'flaky',
                model: 'flaky-planner',
                baseURL: broken.url,
                apiKey: 'sk-test',
                timeoutMs: 1000,
              },
              {
                id: 'planner',
                model: 'scripted-planner',
                baseURL: modelUrl,
                apiKey: 'sk-test',
                inputUsdPerMTok: 1,
                outputUsdPerMTok: 2,
              },
              {
                id: 'coder',
                model: 'scripted-coder',
                baseURL: modelUrl,
                apiKey: 'sk-test',
                inputUsdPerMTok: 1,
                outputUsdPerMTok: 2,
              },
            ],
            roles: { planning: ['flaky', 'planner'], code: ['coder'] },
            breaker: { failureThreshold: 3, cooldownMs: 60_000 },
          }),
        );
      },
    });
  });

  afterAll(async () => {
    await stack?.stop();
    await broken?.close();
    await new Promise<void>((resolve) => (echo ? echo.close(() => resolve()) : resolve()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function calls(taskId: string) {
    return stack.db.kysely
      .selectFrom('ModelCall')
      .select(['role', 'candidateId', 'outcome', 'fallback', 'errorCode'])
      .where('taskId', '=', taskId)
      .orderBy('createdAt')
      .execute();
  }

  it('lets a task ask for a model: the preferred candidate is tried first', async () => {
    const event = taskRequested({
      goal: 'Add up the numbers with a chosen planner',
      input: { numbers: [2, 3] },
      models: { planning: 'planner' },
    });
    await stack.publish('task.requested.v1', event);
    const outcome = await stack.waitForOutcome(answers(event), 'the task with a model preference');
    expect(outcome.data.result).toMatchObject({ answer: 'The sum is 5.' });
    const rows = await waitFor(
      async () => {
        const found = await calls(outcome.data.taskId);
        return found.some((call) => call.role === 'code') ? found : undefined;
      },
      { description: 'calls of the preference task', timeoutMs: 10_000 },
    );
    expect(rows.filter((call) => call.role === 'planning')).toEqual([
      { role: 'planning', candidateId: 'planner', outcome: 'ok', fallback: false, errorCode: null },
    ]);
    // The first candidate of the role was not asked at all.
    expect(broken.requests).toHaveLength(0);
  });

  it('falls back from a planning model that answers 429, 500 and then times out, and records each call', async () => {
    const first = taskRequested({ goal: 'Add up the numbers', input: { numbers: [1, 2, 3] } });
    await stack.publish('task.requested.v1', first);
    const outcome = await stack.waitForOutcome(answers(first), 'the first task');
    expect(outcome.data.status).toBe('completed');
    const firstCalls = await waitFor(
      async () => {
        const rows = await calls(outcome.data.taskId);
        return rows.length >= 3 ? rows : undefined;
      },
      { description: 'model calls of the first task', timeoutMs: 10_000 },
    );
    expect(firstCalls.filter((call) => call.role === 'planning')).toEqual([
      {
        role: 'planning',
        candidateId: 'flaky',
        outcome: 'error',
        fallback: false,
        errorCode: 'MODEL.RATE_LIMITED',
      },
      { role: 'planning', candidateId: 'planner', outcome: 'ok', fallback: true, errorCode: null },
    ]);
    for (const [goal, code] of [
      ['Add up two numbers', 'MODEL.SERVER_ERROR'],
      ['Add up three numbers', 'MODEL.TIMEOUT'],
    ] as const) {
      const event = taskRequested({ goal, input: { numbers: [4, 5] } });
      await stack.publish('task.requested.v1', event);
      const done = await stack.waitForOutcome(answers(event), goal);
      expect(done.data.result).toMatchObject({ answer: 'The sum is 9.' });
      const rows = await waitFor(
        async () => {
          const found = await calls(done.data.taskId);
          return found.some((call) => call.role === 'code') ? found : undefined;
        },
        { description: `calls of ${goal}`, timeoutMs: 10_000 },
      );
      expect(rows.find((call) => call.candidateId === 'flaky')?.errorCode).toBe(code);
    }
    // Three failures in a row opened the breaker: the dead endpoint is skipped, not called again.
    const before = broken.requests.length;
    const fourth = taskRequested({ goal: 'Add up four numbers', input: { numbers: [1, 1, 1, 1] } });
    await stack.publish('task.requested.v1', fourth);
    const done = await stack.waitForOutcome(answers(fourth), 'the task after the breaker opened');
    expect(done.data.status).toBe('completed');
    expect(broken.requests.length).toBe(before);
  });

  it('stops a task that runs out of its model-call budget with BUDGET.EXCEEDED', async () => {
    const event = taskRequested({
      goal: 'Add up the numbers on a budget',
      input: { numbers: [1, 2] },
      budget: { maxModelCalls: 1 },
    });
    await stack.publish('task.requested.v1', event);
    const outcome = await stack.waitForOutcome(answers(event), 'the budgeted task');
    expect(outcome.data.status).toBe('failed');
    expect(outcome.data.error?.code).toBe('BUDGET.EXCEEDED');
    const rows = await calls(outcome.data.taskId);
    expect(rows.filter((call) => call.role === 'code')).toEqual([]);
  });

  it('sends a prose answer back to the planning model and plans again', async () => {
    const event = taskRequested({ goal: 'Add up the numbers [prose]', input: { numbers: [3, 4] } });
    await stack.publish('task.requested.v1', event);
    const outcome = await stack.waitForOutcome(answers(event), 'the prose task');
    expect(outcome.data.result).toMatchObject({ answer: 'The sum is 7.' });
    const rows = await stack.db.kysely
      .selectFrom('PlanMetrics as m')
      .select(['m.repairAttempts', 'm.qualityScore', 'm.qualityFactors'])
      .where('m.taskId', '=', outcome.data.taskId)
      .execute();
    expect(rows[0]?.repairAttempts).toBe(1);
    expect(rows[0]?.qualityScore).toBeLessThan(1);
    expect(rows[0]?.qualityFactors).toMatchObject({ rejections: 1, structural: 1 });
  });

  it('asks the code model to fix a program that failed in the sandbox, and stores every attempt', async () => {
    const event = taskRequested({ goal: 'Halve 84 [fix-me]' });
    await stack.publish('task.requested.v1', event);
    const outcome = await stack.waitForOutcome(answers(event), 'the fixed task');
    expect(outcome.data.result).toMatchObject({ answer: 'Half is 42.' });
    const rows = await stack.db.kysely
      .selectFrom('StepAttempt')
      .select(['attempt', 'origin', 'outcome', 'code'])
      .where('taskId', '=', outcome.data.taskId)
      .orderBy('attempt')
      .execute();
    expect(rows).toEqual([
      { attempt: 1, origin: 'generate', outcome: 'error', code: 'result = 84 // 0' },
      { attempt: 2, origin: 'fix', outcome: 'ok', code: 'result = 84 // 2' },
    ]);
    const fixRequest = stack.model.requests.find(
      (request) => request.body && JSON.stringify(request.body.messages).includes('It failed in the sandbox'),
    );
    expect(JSON.stringify(fixRequest?.body?.messages)).toContain('ZeroDivisionError');
    // The plan is data a person can read: each step with its dependencies and the model's rationale.
    const view = TaskView.parse(
      await (
        await fetch(`${stack.url('planner')}/v1/tasks/${outcome.data.taskId}`, { headers: stack.auth })
      ).json(),
    );
    expect(view.plan?.steps.map((step) => [step.key, step.dependsOn, step.rationale])).toEqual([
      ['s1', [], 'compute'],
      ['s2', ['s1'], null],
    ]);
  });

  it('reports a sandbox job killed for memory as memory_limit on the step, and the code model fixes it', async () => {
    const event = taskRequested({ goal: 'Allocate too much [memory]' });
    await stack.publish('task.requested.v1', event);
    const outcome = await stack.waitForOutcome(answers(event), 'the memory task');
    expect(outcome.data.result).toMatchObject({ answer: 'Got 1.' });
    const attempts = await stack.db.kysely
      .selectFrom('StepAttempt')
      .select(['attempt', 'origin', 'outcome', 'error'])
      .where('taskId', '=', outcome.data.taskId)
      .orderBy('attempt')
      .execute();
    expect(attempts.map((row) => [row.attempt, row.origin, row.outcome])).toEqual([
      [1, 'given', 'memory_limit'],
      [2, 'fix', 'ok'],
    ]);
    expect(attempts[0]?.error).toMatchObject({ code: 'SANDBOX.MEMORY_LIMIT' });
    const runs = await stack.db.kysely
      .selectFrom('SandboxRun')
      .select((eb) => ['outcome', eb.cast<string | null>('peakMemoryBytes', 'text').as('peak')])
      .where('taskId', '=', outcome.data.taskId)
      .orderBy('createdAt')
      .execute();
    expect(runs.map((row) => row.outcome)).toEqual(['memory_limit', 'ok']);
    expect(Number(runs[1]?.peak)).toBeGreaterThan(0);
  });

  it('re-plans once after a step fails for good, and the new version completes the task', async () => {
    const event = taskRequested({ goal: 'Count to four [replan]' });
    await stack.publish('task.requested.v1', event);
    const outcome = await stack.waitForOutcome(answers(event), 'the re-planned task');
    expect(outcome.data.result).toMatchObject({ answer: 'Got 4.' });
    expect(outcome.data.planVersion).toBe(2);
    const rows = await stack.db.kysely
      .selectFrom('Plan')
      .select(['version', 'origin', 'status'])
      .where('taskId', '=', outcome.data.taskId)
      .orderBy('version')
      .execute();
    expect(rows).toEqual([
      { version: 1, origin: 'model', status: 'superseded' },
      { version: 2, origin: 'replan', status: 'active' },
    ]);
  });

  it('writes, reads and lists files in the task workspace', async () => {
    const event = taskRequested({ goal: 'Keep a note [workspace]' });
    await stack.publish('task.requested.v1', event);
    const outcome = await stack.waitForOutcome(answers(event), 'the workspace task');
    expect(outcome.data.result).toMatchObject({ answer: 'Read: hello from s1' });
    const rows = await stack.db.kysely
      .selectFrom('WorkspaceFile')
      .select(['path', 'size'])
      .where('taskId', '=', outcome.data.taskId)
      .execute();
    expect(rows).toEqual([{ path: 'notes/greeting.txt', size: 13 }]);
  });

  it('approves a step built from an earlier result with its values, then runs exactly those', async () => {
    const event = taskRequested({ goal: 'Copy the note [copy]' });
    await stack.publish('task.requested.v1', event);
    const outcome = await stack.waitForOutcome(answers(event), 'the copy task');
    expect(outcome.type).toBe('tandem.task.completed');
    expect(outcome.data.result).toMatchObject({ answer: 'Copied 18 bytes' });
    const rows = await stack.db.kysely
      .selectFrom('ApprovalRequest as a')
      .innerJoin('PlanStep as s', 's.id', 'a.stepId')
      .select((eb) => ['a.status', 'a.resolvedArguments', eb('a.argumentsHash', 'is not', null).as('bound')])
      .where('a.taskId', '=', outcome.data.taskId)
      .where('s.stepKey', '=', 's3')
      .execute();
    expect(rows).toEqual([
      {
        status: 'approved',
        resolvedArguments: { path: 'copy.txt', content: 'copy: hello values' },
        bound: true,
      },
    ]);
    const audit = await stack.db.kysely
      .selectFrom('AuditLog')
      .select('action')
      .where('subjectId', '=', (eb) =>
        eb
          .selectFrom('ApprovalRequest as a')
          .innerJoin('PlanStep as s', 's.id', 'a.stepId')
          .select((inner) => inner.cast<string>('a.stepId', 'text').as('stepId'))
          .where('a.taskId', '=', outcome.data.taskId)
          .where('s.stepKey', '=', 's3'),
      )
      .orderBy('seq')
      .execute();
    expect(audit.map((row) => row.action)).toEqual(['approval.awaiting-values', 'approval.auto-approved']);
  });

  it('gives run_code the workspace files and saves what the program writes', async () => {
    const event = taskRequested({ goal: 'Total the file [files-in-code]' });
    await stack.publish('task.requested.v1', event);
    const outcome = await stack.waitForOutcome(answers(event), 'the files-in-code task');
    expect(outcome.data.result).toMatchObject({ answer: '3 numbers, total 12' });
    const rows = await stack.db.kysely
      .selectFrom('WorkspaceFile')
      .select(['path', 'size'])
      .where('taskId', '=', outcome.data.taskId)
      .orderBy('path')
      .execute();
    expect(rows).toEqual([
      { path: 'data/in.json', size: 9 },
      { path: 'data/out.txt', size: 2 },
    ]);
  });

  it('calls an allowed HTTP service with a secret resolved only at execution, and never stores it', async () => {
    const event = taskRequested({ goal: 'Ping the echo service [http]' });
    await stack.publish('task.requested.v1', event);
    const outcome = await stack.waitForOutcome(answers(event), 'the http task');
    expect(outcome.data.result).toMatchObject({ answer: 'Status 200, echoed [secret]' });
    const call = echoed.at(-1);
    expect(call).toMatchObject({ authorization: ECHO_SECRET, body: '{"ping":true}' });
    expect(call?.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
    // Neither the plan, the step results, the events nor the model calls hold the value.
    // Every row of each table, every column, as JSON text (int8 columns come as strings, so all serialise).
    const tables = {
      PlanStep: () => stack.db.kysely.selectFrom('PlanStep').selectAll().execute(),
      StepRun: () => stack.db.kysely.selectFrom('StepRun').selectAll().execute(),
      Outbox: () => stack.db.kysely.selectFrom('Outbox').selectAll().execute(),
      TaskRun: () => stack.db.kysely.selectFrom('TaskRun').selectAll().execute(),
      ModelCall: () => stack.db.kysely.selectFrom('ModelCall').selectAll().execute(),
    };
    for (const [table, read] of Object.entries(tables)) {
      const rows: unknown[] = await read();
      expect(rows.length, table).toBeGreaterThan(0);
      expect(rows.filter((row) => JSON.stringify(row).includes(ECHO_SECRET)).length, table).toBe(0);
    }
    expect(JSON.stringify(stack.model.requests.map((request) => request.rawBody))).not.toContain(ECHO_SECRET);
  });

  it('stores the actual outcome beside the plan quality score', async () => {
    const event = taskRequested({ goal: 'Add up the numbers once more', input: { numbers: [1] } });
    await stack.publish('task.requested.v1', event);
    const outcome = await stack.waitForOutcome(answers(event), 'the scored task');
    const row = await waitFor(
      async () => {
        const rows = await stack.db.kysely
          .selectFrom('PlanMetrics')
          .select(['outcome', 'qualityScore', 'estimatedCostUsd'])
          .where('taskId', '=', outcome.data.taskId)
          .execute();
        return rows[0]?.outcome ? rows[0] : undefined;
      },
      { description: 'the stored outcome', timeoutMs: 10_000 },
    );
    expect(row.outcome).toBe('completed');
    expect(row.qualityScore).toBeGreaterThan(0);
    // One run_code with a spec: one code call estimated at 1500 prompt + 600 completion tokens.
    expect(row.estimatedCostUsd).toBeCloseTo((1500 * 1 + 600 * 2) / 1_000_000, 9);
  });
});
