import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChatRequestRecord, ScriptedReply } from '@tandem/testing';
import { waitFor } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  answers,
  firstUserText,
  sandboxRunCount,
  startStack,
  taskIdOfExternalId,
  taskRequested,
  type Stack,
} from './harness.js';

/** run_code then respond; the goal picks the program (so a policy rule can match it). */
function script(request: ChatRequestRecord): ScriptedReply {
  const goal = firstUserText(request.body.messages);
  if (goal.includes('ask-first')) {
    return {
      toolCalls: [
        { name: 'ask_human', arguments: { question: 'Which unit?', choices: ['km', 'mi'] } },
        { name: 'run_code', arguments: { language: 'python', code: 'result = 6 * 7', spec: null } },
        {
          name: 'respond',
          arguments: { answer: '{{steps.s2.value}} {{steps.s1.value.answer}}' },
        },
      ],
    };
  }
  const code = goal.includes('expire-me') ? '# expire-me\nresult = 1' : 'result = 6 * 7';
  return {
    toolCalls: [
      { name: 'run_code', arguments: { language: 'python', code, spec: null } },
      { name: 'respond', arguments: { answer: 'The answer is {{steps.s1.value}}.' } },
    ],
  };
}

const POLICY = `
version: e2e-durable-1
defaults: { deadline: 1h, onExpiry: reject }
trust:
  low: { minScore: 0, minSuccesses: 0 }
rules:
  - id: expires-quickly
    effect: ask
    tools: [run_code]
    arguments: { code: 'expire-me' }
    deadline: 1s
  - id: code-is-reviewed
    effect: ask
    tools: [run_code]
    reason: every program is reviewed in this deployment
`;

type Approval = { id: string; tool: string; status: string; basis: string | null };

let stack: Stack;
let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'tandem-e2e-policy-'));
  const policy = join(directory, 'policy.yaml');
  await writeFile(policy, POLICY);
  stack = await startStack({
    match: script,
    // As pnpm start runs it: every service its own NATS user with only its own subjects, the streams and
    // consumers provisioned before, this test an outside system. The whole flow proves the permission set.
    natsAuth: true,
    env: { TANDEM_APPROVAL_POLICY: policy, TANDEM_APPROVAL_SWEEP_MS: '200' },
  });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (directory) await rm(directory, { recursive: true, force: true });
});

async function taskIdOf(event: Record<string, unknown>): Promise<string> {
  return waitFor(async () => await taskIdOfExternalId(stack, event['id']), {
    description: 'the task row',
    timeoutMs: 30_000,
  });
}

async function pendingRunCode(taskId: string): Promise<Approval> {
  return waitFor(
    async () => {
      const response = await fetch(`${stack.url('approval')}/v1/approvals?status=pending&taskId=${taskId}`, {
        headers: stack.auth,
      });
      if (!response.ok) return undefined;
      const body = (await response.json()) as { approvals: Approval[] };
      return body.approvals.find((approval) => approval.tool === 'run_code');
    },
    { description: `a pending run_code approval for ${taskId}`, timeoutMs: 30_000, intervalMs: 100 },
  );
}

async function decide(id: string, body: Record<string, unknown>): Promise<Response> {
  return fetch(`${stack.url('approval')}/v1/approvals/${id}/decision`, {
    method: 'POST',
    headers: { ...stack.auth, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** How many `approval.approved` audit entries the step of an approval request has. */
async function approvedAuditCount(approvalId: string): Promise<number> {
  const { n } = await stack.db.kysely
    .selectFrom('AuditLog')
    .select((eb) => eb.cast<number>(eb.fn.countAll(), 'integer').as('n'))
    .where('action', '=', 'approval.approved')
    .where('subjectId', 'in', (eb) =>
      eb
        .selectFrom('ApprovalRequest')
        .select((inner) => inner.cast<string>('stepId', 'text').as('stepId'))
        .where('id', '=', approvalId),
    )
    .executeTakeFirstOrThrow();
  return n;
}

/** How many verdict feedback rows an approval request has. */
async function verdictCount(approvalId: string): Promise<number> {
  const { n } = await stack.db.kysely
    .selectFrom('Feedback')
    .select((eb) => eb.cast<number>(eb.fn.countAll(), 'integer').as('n'))
    .where('approvalId', '=', approvalId)
    .where('kind', '=', 'verdict')
    .executeTakeFirstOrThrow();
  return n;
}

/** How many of a task's run_code steps completed. */
async function completedProgramCount(taskId: string): Promise<number> {
  const { n } = await stack.db.kysely
    .selectFrom('StepRun as r')
    .innerJoin('PlanStep as s', 's.id', 'r.stepId')
    .select((eb) => eb.cast<number>(eb.fn.countAll(), 'integer').as('n'))
    .where('r.taskId', '=', taskId)
    .where('s.tool', '=', 'run_code')
    .where('r.status', '=', 'completed')
    .executeTakeFirstOrThrow();
  return n;
}

async function taskState(taskId: string): Promise<{ status: string; error: unknown; result: unknown }> {
  const row = await stack.db.kysely
    .selectFrom('TaskRun')
    .select(['status', 'error', 'result'])
    .where('taskId', '=', taskId)
    .executeTakeFirst();
  return row ?? { status: 'none', error: null, result: null };
}

describe('a pending approval survives a restart of all five services and NATS', () => {
  it('the decision arrives after the restart, the task completes, the step ran exactly once', async () => {
    const event = taskRequested({ goal: 'What is six times seven?', kind: 'durable-approval' });
    await stack.publish('task.requested.v1', event);
    const taskId = await taskIdOf(event);
    const pending = await pendingRunCode(taskId);
    expect(pending.basis).toBe('rule:code-is-reviewed');
    expect(await sandboxRunCount(stack, taskId)).toBe(0);

    await stack.restartAll();

    // Still pending after everything restarted: it lives in Postgres.
    const again = await pendingRunCode(taskId);
    expect(again.id).toBe(pending.id);
    const decided = await decide(pending.id, { decision: 'approve', reason: 'looks right' });
    expect(decided.status).toBe(200);
    const second = await decide(pending.id, { decision: 'approve' });
    expect(second.status).toBe(409);

    const done = await waitFor(
      async () => {
        const state = await taskState(taskId);
        return state.status === 'completed' || state.status === 'failed' ? state : undefined;
      },
      { description: 'the task to finish after the restart', timeoutMs: 60_000, intervalMs: 200 },
    );
    expect(done.status).toBe('completed');
    expect(JSON.stringify(done.result)).toContain('42');
    expect(await sandboxRunCount(stack, taskId)).toBe(1);
    expect(await approvedAuditCount(pending.id)).toBe(1);
    // The verdict reached learning as feedback.
    await waitFor(async () => (await verdictCount(pending.id)) === 1, {
      description: 'the verdict stored by learning',
      timeoutMs: 20_000,
    });
  }, 180_000);
});

describe('deadlines and edits across the services', () => {
  it('an expired request is rejected and the task fails with APPROVAL.EXPIRED', async () => {
    const event = taskRequested({ goal: 'Please expire-me', kind: 'durable-approval' });
    await stack.publish('task.requested.v1', event);
    const outcome = await stack.waitForOutcome(answers(event), 'the failed task');
    expect(outcome.data.status).toBe('failed');
    expect(outcome.data.error?.code).toBe('APPROVAL.EXPIRED');
    const taskId = await taskIdOf(event);
    expect(await sandboxRunCount(stack, taskId)).toBe(0);
  }, 90_000);

  it('an approver edits the program: a bad edit is refused, the good one is what runs', async () => {
    const event = taskRequested({ goal: 'What is six times seven, plus one?', kind: 'durable-approval' });
    await stack.publish('task.requested.v1', event);
    const taskId = await taskIdOf(event);
    const pending = await pendingRunCode(taskId);
    const bad = await decide(pending.id, { decision: 'edit', arguments: { language: 'python' } });
    expect(bad.status).toBe(422);
    const good = await decide(pending.id, {
      decision: 'edit',
      arguments: { language: 'python', code: 'result = 6 * 7 + 1' },
      reason: 'the goal says plus one',
    });
    expect(good.status).toBe(200);
    const outcome = await stack.waitForOutcome(answers(event), 'the completed task');
    expect(outcome.data.status).toBe('completed');
    expect(JSON.stringify(outcome.data.result)).toContain('43');
  }, 90_000);
});

describe('steps wait only for the steps that need a human', () => {
  it('an independent program runs while a question waits; the answer then completes the task', async () => {
    const event = taskRequested({ goal: 'ask-first: how far?', kind: 'durable-approval' });
    await stack.publish('task.requested.v1', event);
    const taskId = await taskIdOf(event);
    const approvals = await waitFor(
      async () => {
        const response = await fetch(
          `${stack.url('approval')}/v1/approvals?status=pending&taskId=${taskId}`,
          {
            headers: stack.auth,
          },
        );
        const body = (await response.json()) as { approvals: Approval[] };
        return body.approvals.length === 2 ? body.approvals : undefined;
      },
      { description: 'the question and the program waiting', timeoutMs: 30_000 },
    );
    const program = approvals.find((approval) => approval.tool === 'run_code');
    const question = approvals.find((approval) => approval.tool === 'ask_human');
    expect(program && question).toBeTruthy();
    expect((await decide(program?.id ?? '', { decision: 'approve' })).status).toBe(200);
    // The program runs although the question before it is still open.
    await waitFor(async () => (await completedProgramCount(taskId)) === 1, {
      description: 'the program to complete while the question waits',
      timeoutMs: 30_000,
    });
    expect((await taskState(taskId)).status).toBe('running');
    expect((await decide(question?.id ?? '', { decision: 'answer', answer: 'km' })).status).toBe(200);
    const outcome = await stack.waitForOutcome(answers(event), 'the completed task');
    expect(outcome.data.status).toBe('completed');
    expect(JSON.stringify(outcome.data.result)).toContain('42 km');
  }, 90_000);
});

it('needed no NATS right that a service or the outside system lacks (the server logged no violation)', () => {
  expect(stack.natsViolations).toEqual([]);
});
