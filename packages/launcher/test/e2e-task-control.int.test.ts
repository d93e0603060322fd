import type { ChatRequestRecord, ScriptedReply } from '@tandem/testing';
import { ApprovalView, HttpErrorBody, TaskView } from '@tandem/contracts';
import { waitFor } from '@tandem/testing';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  allowToolsPolicy,
  answers,
  firstUserText,
  sandboxRunCount,
  startStack,
  taskIdOfExternalId,
  taskRequested,
  type Stack,
} from './harness.js';

/** run_code (compute) needs a human here; read and write steps are approved automatically. */
function script(request: ChatRequestRecord): ScriptedReply {
  const planning = (request.body.tools ?? []).length > 0;
  if (!planning) return { content: '```python\nresult = 6 * 7\n```' };
  const task = firstUserText(request.body.messages);
  if (task.includes('[slow]'))
    return {
      toolCalls: [
        {
          name: 'run_code',
          arguments: {
            language: 'python',
            code: 'import time\ntime.sleep(8)\nresult = 1',
            spec: null,
            dependsOn: null,
            rationale: null,
          },
        },
        { name: 'respond', arguments: { answer: 'Slept.', dependsOn: null, rationale: null } },
      ],
    };
  if (task.includes('[ask]'))
    return {
      toolCalls: [
        {
          name: 'ask_human',
          arguments: {
            question: 'Which colour?',
            choices: ['red', 'blue'],
            dependsOn: null,
            rationale: null,
          },
        },
        {
          name: 'respond',
          arguments: { answer: 'You chose {{steps.s1.value.answer}}.', dependsOn: null, rationale: null },
        },
      ],
    };
  return {
    toolCalls: [
      {
        name: 'run_code',
        arguments: {
          language: 'python',
          code: 'result = 6 * 7',
          spec: null,
          dependsOn: null,
          rationale: null,
        },
      },
      {
        name: 'respond',
        arguments: { answer: 'The answer is {{steps.s1.value}}.', dependsOn: null, rationale: null },
      },
    ],
  };
}

const ApprovalList = z.object({ approvals: z.array(ApprovalView) });
type Approval = z.infer<typeof ApprovalView>;

describe('plans edited by people, cancellation, deadlines and questions', () => {
  let stack: Stack;

  beforeAll(async () => {
    // run_code waits for a human (compute is not in TANDEM_AUTO_APPROVE); the workspace steps of the
    // edited plans are allowed by a written rule (writes would otherwise need a track record).
    stack = await startStack({
      match: script,
      // Each service its own NATS user, as pnpm start runs it: the cancel paths (HTTP and NATS cancels,
      // deadlines, the sandbox-runner's cancel subscription) prove their part of the permission set.
      natsAuth: true,
      env: { TANDEM_AUTO_APPROVE: 'read,write' },
      policy: allowToolsPolicy(['write_file', 'read_file', 'list_files']),
    });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  afterAll(() => {
    // Registered last, so it runs first (before the stack stops): nothing needed a right it lacks.
    expect(stack?.natsViolations ?? []).toEqual([]);
  });

  async function taskIdOf(event: Record<string, unknown>): Promise<string> {
    return waitFor(async () => await taskIdOfExternalId(stack, event['id']), {
      description: 'the task row',
      timeoutMs: 20_000,
    });
  }

  async function pending(taskId: string, tool: string): Promise<Approval> {
    return waitFor(
      async () => {
        const response = await fetch(
          `${stack.url('approval')}/v1/approvals?status=pending&taskId=${taskId}`,
          { headers: stack.auth },
        );
        const body = ApprovalList.parse(await response.json());
        return body.approvals.find((approval) => approval.tool === tool);
      },
      { description: `a pending ${tool} approval`, timeoutMs: 30_000, intervalMs: 100 },
    );
  }

  function putPlan(taskId: string, body: unknown): Promise<Response> {
    return fetch(`${stack.url('planner')}/v1/tasks/${taskId}/plan`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...stack.auth },
      body: JSON.stringify(body),
    });
  }

  it('takes a human-edited plan while it awaits approval, validated like a model plan', async () => {
    const event = taskRequested({ goal: 'Compute the answer' });
    await stack.publish('task.requested.v1', event);
    const taskId = await taskIdOf(event);
    await pending(taskId, 'run_code');

    const traversal = await putPlan(taskId, {
      steps: [
        { id: 'save', tool: 'write_file', arguments: { path: '../../etc/passwd', content: 'x' } },
        { id: 'answer', tool: 'respond', arguments: { answer: 'done' } },
      ],
    });
    expect(traversal.status).toBe(422);
    const rejected = HttpErrorBody.parse(await traversal.json());
    expect(rejected.error).toMatchObject({ code: 'TOOL.PATH_REJECTED', stepId: 'save' });

    const cycle = await putPlan(taskId, {
      steps: [
        { id: 'a', tool: 'read_file', arguments: { path: 'x' }, dependsOn: ['b'] },
        { id: 'b', tool: 'read_file', arguments: { path: 'y' }, dependsOn: ['a'] },
        { id: 'answer', tool: 'respond', arguments: { answer: 'done' } },
      ],
    });
    expect(cycle.status).toBe(422);
    expect(HttpErrorBody.parse(await cycle.json()).error.code).toBe('PLAN.CYCLE');
    const unchanged = await stack.db.kysely
      .selectFrom('Plan')
      .select((eb) => eb.cast<number>(eb.fn.countAll(), 'integer').as('n'))
      .where('taskId', '=', taskId)
      .executeTakeFirstOrThrow();
    expect(unchanged.n).toBe(1);

    const edited = await putPlan(taskId, {
      editedBy: 'alice',
      steps: [
        { id: 'save', tool: 'write_file', arguments: { path: 'out/answer.txt', content: '42' } },
        { id: 'load', tool: 'read_file', arguments: { path: 'out/answer.txt' }, dependsOn: ['save'] },
        { id: 'answer', tool: 'respond', arguments: { answer: 'Stored {{steps.load.value.content}}.' } },
      ],
    });
    expect(edited.status).toBe(200);
    const view = TaskView.parse(await edited.json());
    // The editor is the token; the body's name is only a label beside it (issue 11, hole 3).
    const admin = await stack.db.kysely
      .selectFrom('ApiToken')
      .select('id')
      .where('name', '=', 'e2e-admin')
      .execute();
    const editor = `token:${admin[0]?.id ?? 'missing'}`;
    expect(view.plan).toMatchObject({
      version: 2,
      origin: 'human',
      editedBy: editor,
      editedByLabel: 'alice',
    });

    const outcome = await stack.waitForOutcome(answers(event), 'the edited task');
    expect(outcome.data.result).toMatchObject({ answer: 'Stored 42.' });
    expect(outcome.data.planVersion).toBe(2);
    const rows = await stack.db.kysely
      .selectFrom('ApprovalRequest')
      .select('status')
      .where('taskId', '=', taskId)
      .where('tool', '=', 'run_code')
      .execute();
    expect(rows).toEqual([{ status: 'superseded' }]);
    const superseded = await stack.db.kysely
      .selectFrom('ApprovalRequest')
      .select('decidedBy')
      .where('taskId', '=', taskId)
      .where('tool', '=', 'run_code')
      .execute();
    expect(superseded).toEqual([{ decidedBy: editor }]);

    const late = await putPlan(taskId, {
      steps: [{ id: 'answer', tool: 'respond', arguments: { answer: 'too late' } }],
    });
    expect(late.status).toBe(409);
  });

  it('cancels a task waiting for approval: no step runs and the task ends cancelled', async () => {
    const event = taskRequested({ goal: 'Compute and then be cancelled' });
    await stack.publish('task.requested.v1', event);
    const taskId = await taskIdOf(event);
    const approval = await pending(taskId, 'run_code');
    const response = await fetch(`${stack.url('planner')}/v1/tasks/${taskId}/cancel`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...stack.auth },
      body: JSON.stringify({ reason: 'not needed any more' }),
    });
    expect(response.status).toBe(202);
    const outcome = await stack.waitForOutcome(answers(event), 'the cancelled task');
    expect(outcome.type).toBe('tandem.task.cancelled');
    expect(outcome.data).toMatchObject({ status: 'cancelled', reason: 'not needed any more' });
    const rows = await stack.db.kysely
      .selectFrom('StepRun')
      .select('status')
      .where('taskId', '=', taskId)
      .orderBy('status')
      .execute();
    expect(rows.every((row) => row.status === 'cancelled')).toBe(true);
    expect(await sandboxRunCount(stack, taskId)).toBe(0);
    // Approving afterwards changes nothing.
    const decision = await fetch(`${stack.url('approval')}/v1/approvals/${approval.id}/decision`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...stack.auth },
      body: JSON.stringify({ decision: 'approve' }),
    });
    expect(decision.status).toBe(409);
    const again = await fetch(`${stack.url('planner')}/v1/tasks/${taskId}/cancel`, {
      method: 'POST',
      headers: stack.auth,
    });
    expect(again.status).toBe(409);
  });

  it('kills a running sandbox job when its task is cancelled', async () => {
    const event = taskRequested({ goal: 'Sleep for a while [slow]' });
    await stack.publish('task.requested.v1', event);
    const taskId = await taskIdOf(event);
    const approval = await pending(taskId, 'run_code');
    await fetch(`${stack.url('approval')}/v1/approvals/${approval.id}/decision`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...stack.auth },
      body: JSON.stringify({ decision: 'approve' }),
    });
    await waitFor(
      async () =>
        (
          await stack.db.kysely
            .selectFrom('StepRun')
            .select('stepId')
            .where('taskId', '=', taskId)
            .where('status', '=', 'running')
            .execute()
        )[0],
      { description: 'the step running in the sandbox', timeoutMs: 20_000 },
    );
    // Give the runner a moment to have the job started, then cancel it.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const response = await fetch(`${stack.url('planner')}/v1/tasks/${taskId}/cancel`, {
      method: 'POST',
      headers: stack.auth,
    });
    expect(response.status).toBe(202);
    const outcome = await stack.waitForOutcome(answers(event), 'the cancelled sleeping task');
    expect(outcome.data.status).toBe('cancelled');
    const run = await waitFor(
      async () =>
        (
          await stack.db.kysely
            .selectFrom('SandboxRun')
            .select(['outcome', 'durationMs'])
            // The row exists from the job's start (status running); the kill is recorded when it finishes.
            .where('taskId', '=', taskId)
            .where('status', '=', 'finished')
            .execute()
        )[0],
      { description: 'the killed sandbox run', timeoutMs: 20_000 },
    );
    expect(run.outcome).toBe('killed');
    expect(run.durationMs).toBeLessThan(7000);
  });

  it('takes over a code step whose claim a crashed executor left behind', async () => {
    const event = taskRequested({ goal: 'Compute after a crash' });
    await stack.publish('task.requested.v1', event);
    const taskId = await taskIdOf(event);
    await pending(taskId, 'run_code');
    // As if an executor had claimed the step ten minutes ago and died before sending it to the sandbox:
    // every message of the task is acknowledged, so only the executor's sweep can pick it up again.
    // (This host's clock is the database's; timestamps are UTC wall-clock time as the pool writes them.)
    const claimed = await stack.db.kysely
      .updateTable('StepRun')
      .set({ status: 'generating', approval: 'human', updatedAt: new Date(Date.now() - 10 * 60_000) })
      .where('stepId', '=', (eb) =>
        eb
          .selectFrom('PlanStep as s')
          .innerJoin('Plan as p', 'p.id', 's.planId')
          .select('s.id')
          .where('p.taskId', '=', taskId)
          .where('s.tool', '=', 'run_code'),
      )
      .executeTakeFirst();
    expect(claimed.numUpdatedRows).toBe(1n);
    const outcome = await stack.waitForOutcome(answers(event), 'the task taken over after the crash');
    expect(outcome.data.result).toMatchObject({ answer: 'The answer is 42.' });
  });

  it('cancels a task named by the CloudEvent that requested it', async () => {
    const event = taskRequested({ goal: 'Compute, cancelled by the submitter' });
    await stack.publish('task.requested.v1', event);
    const taskId = await taskIdOf(event);
    await pending(taskId, 'run_code');
    await stack.publish('task.cancel-requested.v1', {
      specversion: '1.0',
      id: `cancel-${String(event['id'])}`,
      source: 'urn:test:billing',
      type: 'tandem.task.cancel-requested',
      data: { request: { source: event['source'], id: event['id'] } },
    });
    const outcome = await stack.waitForOutcome(answers(event), 'the task cancelled over NATS');
    expect(outcome.data.status).toBe('cancelled');
  });

  it('fails a task whose deadline passes while it waits for a human', async () => {
    const event = taskRequested({
      goal: 'Compute before the deadline',
      deadline: new Date(Date.now() + 3000).toISOString(),
    });
    await stack.publish('task.requested.v1', event);
    const outcome = await stack.waitForOutcome(answers(event), 'the task past its deadline');
    expect(outcome.data.status).toBe('failed');
    expect(outcome.data.error?.code).toBe('TASK.DEADLINE_EXCEEDED');
  });

  it('routes ask_human to the approval service and continues with the answer', async () => {
    const event = taskRequested({ goal: 'Pick a colour [ask]' });
    await stack.publish('task.requested.v1', event);
    const taskId = await taskIdOf(event);
    const question = await pending(taskId, 'ask_human');
    expect(question).toMatchObject({ kind: 'question', question: 'Which colour?' });
    const wrong = await fetch(`${stack.url('approval')}/v1/approvals/${question.id}/decision`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...stack.auth },
      body: JSON.stringify({ decision: 'answer', answer: 'green' }),
    });
    expect(wrong.status).toBe(422);
    const answered = await fetch(`${stack.url('approval')}/v1/approvals/${question.id}/decision`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...stack.auth },
      body: JSON.stringify({ decision: 'answer', answer: 'blue' }),
    });
    expect(answered.status).toBe(200);
    const outcome = await stack.waitForOutcome(answers(event), 'the answered task');
    expect(outcome.data.result).toMatchObject({ answer: 'You chose blue.' });
  });
});
