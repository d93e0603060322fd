import type { ChatRequestRecord, ScriptedReply } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answers, firstUserText, startStack, taskRequested, type Stack } from './harness.js';

// Issue 12, item 1: what a program prints or returns must never make a message too large for NATS
// (the shared test server keeps nats-server's default max_payload of 1 MiB).
const FLOOD = 'import sys\nsys.stdout.write("x" * 1_500_000)\nresult = 1';
const BIG_VALUE = 'result = "v" * 600_000';

function plan(...codes: string[]): ScriptedReply {
  return {
    toolCalls: [
      ...codes.map((code) => ({ name: 'run_code', arguments: { language: 'python', code, spec: null } })),
      { name: 'respond', arguments: { answer: 'done' } },
    ],
  };
}

function script(request: ChatRequestRecord): ScriptedReply {
  const task = firstUserText(request.body.messages);
  if ((request.body.tools ?? []).length === 0) return { content: '```python\nresult = 6 * 7\n```' };
  if (task.includes('[flood]')) return plan(FLOOD);
  if (task.includes('[big-value]')) return plan(BIG_VALUE, BIG_VALUE);
  return plan('result = 6 * 7');
}

describe('bounded messages (five processes, real Postgres and NATS at max_payload 1 MiB)', () => {
  let stack: Stack;

  beforeAll(async () => {
    // No fixes and no re-plans: each code step runs once, so its outcome is the task's.
    stack = await startStack({
      match: script,
      // The process backend: these tests are about message sizes, not isolation (bwrap may be missing here).
      env: { TANDEM_CODE_FIX_ATTEMPTS: '0', TANDEM_MAX_REPLANS: '0', TANDEM_SANDBOX_BACKEND: 'process' },
    });
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('a program printing 1.5 MiB ends its task, and an unrelated task after it completes', async () => {
    const flood = taskRequested({ goal: 'Print a lot [flood]', kind: 'flood' });
    await stack.publish('task.requested.v1', flood);
    const flooded = await stack.waitForOutcome(answers(flood), 'the outcome of the flooding task');
    // The runner kills a program at its output cap (1 MiB per stream by default): a typed failure.
    expect(flooded.type).toBe('tandem.task.failed');
    expect(flooded.data.error?.code).toBe('SANDBOX.OUTPUT_LIMIT');
    const runs = await stack.db.kysely
      .selectFrom('SandboxRun')
      .select((eb) => [
        'outcome',
        eb.fn<number>('length', ['stdout']).as('bytes'),
        'stdoutTruncated as truncated',
      ])
      .where('taskId', '=', flooded.data.taskId)
      .execute();
    // The whole capped output is kept in Postgres; only the event is cut.
    expect(runs).toEqual([{ outcome: 'output_limit', bytes: 1024 * 1024, truncated: true }]);

    const next = taskRequested({ goal: 'What is six times seven?', kind: 'arithmetic' });
    await stack.publish('task.requested.v1', next);
    const answered = await stack.waitForOutcome(answers(next), 'the outcome of the task after the flood');
    expect(answered.type).toBe('tandem.task.completed');
    expect(answered.data.result).toMatchObject({
      steps: [
        { id: 's1', value: 42 },
        { id: 's2', value: 'done' },
      ],
    });
  }, 120_000);

  it('an outcome too large for an event carries a typed marker, and GET /v1/tasks/:id the whole result', async () => {
    const big = taskRequested({ goal: 'Return two big values [big-value]', kind: 'big' });
    await stack.publish('task.requested.v1', big);
    const outcome = await stack.waitForOutcome(answers(big), 'the outcome of the big-value task');
    expect(outcome.type).toBe('tandem.task.completed');
    const taskId = outcome.data.taskId;
    expect(outcome.data.result).toMatchObject({
      truncated: true,
      href: `/v1/tasks/${taskId}`,
    });
    expect(JSON.stringify(outcome).length).toBeLessThan(256 * 1024);
    const response = await fetch(`${stack.url('planner')}/v1/tasks/${taskId}`, { headers: stack.auth });
    expect(response.status).toBe(200);
    const view = (await response.json()) as {
      status: string;
      result: { steps: Array<{ id: string; value: unknown }> };
    };
    expect(view.status).toBe('completed');
    expect(view.result.steps.slice(0, 2)).toEqual([
      { id: 's1', tool: 'run_code', value: 'v'.repeat(600_000) },
      { id: 's2', tool: 'run_code', value: 'v'.repeat(600_000) },
    ]);
  }, 120_000);
});
