import type { ChatRequestRecord, ScriptedReply } from '@tandem/testing';
import { waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answers, firstUserText, startStack, taskRequested, type Stack } from './harness.js';

// Issue 12, item 2: Postgres refuses NUL (and lone surrogates) in text and jsonb. What a program prints
// or returns, and what a submitter sends, must still end its task.
const NUL_PROGRAM = 'print("a\\0b")\nresult = {"nul": "x\\u0000y", "lone": "\\ud800"}';

function script(request: ChatRequestRecord): ScriptedReply {
  const task = firstUserText(request.body.messages);
  if ((request.body.tools ?? []).length === 0) return { content: '```python\nresult = 6 * 7\n```' };
  const code = task.includes('[nul-program]') ? NUL_PROGRAM : 'result = 6 * 7';
  return {
    toolCalls: [
      { name: 'run_code', arguments: { language: 'python', code, spec: null } },
      { name: 'respond', arguments: { answer: 'done' } },
    ],
  };
}

describe('text Postgres cannot store (five processes, real Postgres and NATS)', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({
      match: script,
      // The process backend: these tests are about storage, not isolation (bwrap may be missing here).
      env: { TANDEM_CODE_FIX_ATTEMPTS: '0', TANDEM_MAX_REPLANS: '0', TANDEM_SANDBOX_BACKEND: 'process' },
    });
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('a program printing NUL and returning NUL and a lone surrogate completes, stored with U+FFFD', async () => {
    const event = taskRequested({ goal: 'Return odd text [nul-program]', kind: 'nul' });
    await stack.publish('task.requested.v1', event);
    const outcome = await stack.waitForOutcome(answers(event), 'the outcome of the NUL program task');
    expect(outcome.type).toBe('tandem.task.completed');
    expect(outcome.data.result).toMatchObject({
      steps: [{ id: 's1', value: { nul: 'x\uFFFDy', lone: '\uFFFD' } }, { id: 's2' }],
    });
    const rows = await stack.db.kysely
      .selectFrom('SandboxRun')
      .select(['stdout', 'value'])
      .where('taskId', '=', outcome.data.taskId)
      .execute();
    expect(rows).toEqual([{ stdout: 'a\uFFFDb\n', value: { nul: 'x\uFFFDy', lone: '\uFFFD' } }]);
  }, 120_000);

  it('a task goal with NUL over HTTP is accepted (202, not 500) and completes', async () => {
    const response = await fetch(`${stack.url('planner')}/v1/tasks`, {
      method: 'POST',
      headers: { ...stack.auth, 'content-type': 'application/json' },
      body: JSON.stringify({ goal: 'What is six\u0000 times seven? \ud800', kind: 'arithmetic' }),
    });
    expect(response.status).toBe(202);
    const { taskId } = (await response.json()) as { taskId: string };
    const view = await waitFor(
      async () => {
        const read = await fetch(`${stack.url('planner')}/v1/tasks/${taskId}`, { headers: stack.auth });
        const body = (await read.json()) as { status: string; goal: string };
        return body.status === 'completed' ? body : undefined;
      },
      { description: 'the HTTP task completed', timeoutMs: 60_000, intervalMs: 200 },
    );
    expect(view.goal).toBe('What is six\uFFFD times seven? \uFFFD');
  }, 120_000);

  it('a task goal with NUL in a CloudEvent completes', async () => {
    const event = taskRequested({ goal: 'What is six\u0000 times seven?', kind: 'arithmetic' });
    await stack.publish('task.requested.v1', event);
    const outcome = await stack.waitForOutcome(answers(event), 'the outcome of the NUL goal CloudEvent');
    expect(outcome.type).toBe('tandem.task.completed');
    const rows = await stack.db.kysely
      .selectFrom('Task')
      .select('goal')
      .where('id', '=', outcome.data.taskId)
      .execute();
    expect(rows).toEqual([{ goal: 'What is six\uFFFD times seven?' }]);
  }, 120_000);
});
