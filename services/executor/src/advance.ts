import { randomUUID } from 'node:crypto';
import {
  CloudEventTypes,
  ErrorCodes,
  ErrorShape,
  HTTP_TASK_SOURCE,
  JsonValue,
  PublicSubjects,
  SandboxRunRequested,
  StepFinished,
  TaskCompletedData,
  TaskFailedData,
  type TaskRequestRef,
  resolveStepReferences,
  toErrorShape,
  type SandboxLimits,
} from '@tandem/contracts';
import { enqueueOutbox, type Db, type OutboxMessage, type Tx } from '@tandem/db';
import { outboxCloudEvent, outboxEvent, toJsonInput, type Log } from '@tandem/service-kit';
import { z } from 'zod';
import { codePrompt, extractCode, nextAction, type StepState } from './domain/progress.js';

/** What the executor needs of the code model. */
export interface CodeModel {
  complete(request: {
    taskId: string;
    messages: Array<{ role: 'system' | 'user'; content: string }>;
    idempotencyKey: string;
  }): Promise<{ content: string | null }>;
}

/** Dependencies of the executor's progress logic. */
export interface AdvanceDeps {
  db: Db;
  log: Log;
  prefix: string;
  codeModel: CodeModel;
  sandboxLimits: SandboxLimits;
  /** After this long a `generating` claim of a crashed replica may be taken over (below the ack wait). */
  claimStaleMs: number;
  /** The consumers' max_deliver: the last delivery fails a step instead of retrying a model call. */
  maxDeliver: number;
  kick: () => void;
  onTaskFinished?: (status: 'completed' | 'failed', kind: string) => void;
}

const StepResult = z.object({ value: JsonValue.nullable().default(null), stdout: z.string().default('') });
const RunCodeArguments = z.object({
  language: z.enum(['javascript', 'python']),
  code: z.string().optional(),
  spec: z.string().optional(),
});
const RespondArguments = z.object({ answer: z.string() });

function publisherOptions(deps: AdvanceDeps) {
  return { prefix: deps.prefix, publisher: 'executor' };
}

async function loadState(db: Db, taskId: string) {
  const run = await db.prisma.taskRun.findUnique({ where: { taskId } });
  if (!run || !run.planId) return null;
  const task = await db.prisma.task.findUnique({
    where: { id: taskId },
    select: { id: true, goal: true, input: true, kind: true, agentId: true, source: true, externalId: true },
  });
  const plan = await db.prisma.plan.findUnique({
    where: { id: run.planId },
    include: { steps: { include: { run: true }, orderBy: { index: 'asc' } } },
  });
  if (!task || !plan) return null;
  const steps: StepState[] = plan.steps.map((step) => {
    const args = z.record(z.string(), JsonValue).safeParse(step.arguments);
    const result = StepResult.safeParse(step.run?.result ?? null);
    const error = ErrorShape.safeParse(step.run?.error ?? null);
    return {
      stepId: step.id,
      key: step.stepKey,
      index: step.index,
      tool: step.tool,
      arguments: args.success ? args.data : {},
      status: step.run?.status ?? 'waiting',
      result: result.success ? result.data : null,
      error: error.success ? error.data : null,
    };
  });
  return { run, task, plan, steps };
}

type State = NonNullable<Awaited<ReturnType<typeof loadState>>>;

function requestOf(task: State['task']): TaskRequestRef {
  return task.source === HTTP_TASK_SOURCE
    ? { idempotencyKey: task.externalId.startsWith('auto:') ? null : task.externalId }
    : { source: task.source, id: task.externalId };
}

/** The outcome CloudEvent and its outbox row. */
export function taskOutcomeMessage(
  deps: Pick<AdvanceDeps, 'prefix'>,
  task: { id: string; kind: string; agentId: string | null },
  request: TaskRequestRef,
  outcome:
    | { status: 'completed'; result: TaskCompletedData['result'] }
    | { status: 'failed'; error: TaskFailedData['error'] },
  extra: { planVersion?: number; tools?: string[] },
): OutboxMessage {
  const common = {
    specversion: '1.0' as const,
    id: randomUUID(),
    source: '/tandem/executor',
    time: new Date().toISOString(),
    datacontenttype: 'application/json' as const,
    subject: task.id,
    correlationid: task.id,
  };
  const base = { taskId: task.id, request, kind: task.kind, agentId: task.agentId, ...extra };
  if (outcome.status === 'completed') {
    const data = TaskCompletedData.parse({ ...base, status: 'completed', result: outcome.result });
    return outboxCloudEvent({ prefix: deps.prefix, publisher: 'executor' }, PublicSubjects.taskCompleted, {
      ...common,
      type: CloudEventTypes.taskCompleted,
      data,
    });
  }
  const data = TaskFailedData.parse({ ...base, status: 'failed', error: outcome.error });
  return outboxCloudEvent({ prefix: deps.prefix, publisher: 'executor' }, PublicSubjects.taskFailed, {
    ...common,
    type: CloudEventTypes.taskFailed,
    data,
  });
}

/** Fails a task once (a conditional update guards against a second outcome). Runs in the caller's transaction. */
export async function failTaskInTx(
  tx: Tx,
  deps: Pick<AdvanceDeps, 'prefix'>,
  task: { id: string; kind: string; agentId: string | null },
  request: TaskRequestRef,
  error: ErrorShape & { stepId?: string },
  extra: { planId?: string | null; planVersion?: number; tools?: string[] },
): Promise<boolean> {
  const existing = await tx.taskRun.findUnique({ where: { taskId: task.id }, select: { status: true } });
  if (existing && existing.status !== 'running') return false;
  const stored = { ...error, retryable: false };
  if (existing) {
    const updated = await tx.taskRun.updateMany({
      where: { taskId: task.id, status: 'running' },
      data: { status: 'failed', error: toJsonInput(stored), finishedAt: new Date() },
    });
    if (updated.count === 0) return false;
  } else {
    await tx.taskRun.create({
      data: {
        taskId: task.id,
        planId: extra.planId ?? null,
        status: 'failed',
        error: toJsonInput(stored),
        finishedAt: new Date(),
      },
    });
  }
  await enqueueOutbox(
    tx,
    taskOutcomeMessage(
      deps,
      task,
      request,
      { status: 'failed', error: stored },
      { planVersion: extra.planVersion, tools: extra.tools },
    ),
  );
  return true;
}

/**
 * Moves a task forward as far as it can go now: runs `respond` steps inline, sends code to the sandbox,
 * finishes or fails the task. Every change is a conditional update in its own short transaction, so two
 * replicas advancing the same task never do a step twice; model calls happen outside transactions.
 */
export async function advanceTask(
  deps: AdvanceDeps,
  taskId: string,
  log: Log,
  delivery: { lastDelivery: boolean } = { lastDelivery: false },
): Promise<void> {
  for (let guard = 0; guard < 1000; guard += 1) {
    const state = await loadState(deps.db, taskId);
    if (!state || state.run.status !== 'running') return;
    const action = nextAction(state.steps);
    const tools = state.steps.map((step) => step.tool);
    const extra = { planId: state.plan.id, planVersion: state.plan.version, tools };
    const task = { id: state.task.id, kind: state.task.kind, agentId: state.task.agentId };
    const request = requestOf(state.task);

    if (action.kind === 'wait') {
      log.debug({ taskId, reason: action.reason }, 'task waits');
      return;
    }
    if (action.kind === 'fail') {
      const failed = await deps.db.prisma.$transaction((tx) =>
        failTaskInTx(tx, deps, task, request, action.error, extra),
      );
      if (failed) {
        deps.kick();
        deps.onTaskFinished?.('failed', task.kind);
        log.warn({ taskId, code: action.error.code }, 'task failed');
      }
      return;
    }
    if (action.kind === 'complete') {
      const respondStep = [...state.steps].reverse().find((step) => step.tool === 'respond');
      const answer = respondStep?.result?.value;
      const result = {
        answer: typeof answer === 'string' ? answer : JSON.stringify(answer ?? null),
        steps: state.steps.map((step) => ({
          id: step.key,
          tool: step.tool,
          value: step.result?.value ?? null,
        })),
      };
      const completed = await deps.db.prisma.$transaction(async (tx) => {
        const updated = await tx.taskRun.updateMany({
          where: { taskId, status: 'running' },
          data: { status: 'completed', result, finishedAt: new Date() },
        });
        if (updated.count === 0) return false;
        await enqueueOutbox(
          tx,
          taskOutcomeMessage(deps, task, request, { status: 'completed', result }, extra),
        );
        return true;
      });
      if (completed) {
        deps.kick();
        deps.onTaskFinished?.('completed', task.kind);
        log.info({ taskId }, 'task completed');
      }
      return;
    }

    const step = action.step;
    const meta = { correlationId: taskId, causationId: null };
    if (step.tool === 'respond') {
      const args = RespondArguments.parse(step.arguments);
      const results = new Map(
        state.steps
          .filter((other) => other.result)
          .map((other) => [
            other.key,
            { value: other.result?.value ?? null, stdout: other.result?.stdout ?? '' },
          ]),
      );
      const answer = resolveStepReferences(args.answer, results);
      await finishStep(deps, step, taskId, 'approved', { status: 'completed', value: answer });
      deps.kick();
      continue;
    }
    if (step.tool === 'run_code') {
      const args = RunCodeArguments.parse(step.arguments);
      // Claim the step before any model call, so two replicas advancing the same task never both pay
      // for code generation. A claim left behind by a crashed replica goes stale and is taken over.
      const claimed = await deps.db.prisma.stepRun.updateMany({
        where: {
          stepId: step.stepId,
          OR: [
            { status: 'approved' },
            { status: 'generating', updatedAt: { lt: new Date(Date.now() - deps.claimStaleMs) } },
          ],
        },
        data: { status: 'generating' },
      });
      if (claimed.count === 0) return;
      let code = args.code ?? null;
      if (code === null) {
        try {
          const answer = await deps.codeModel.complete({
            taskId,
            messages: codePrompt({
              language: args.language,
              spec: args.spec ?? '',
              goal: state.task.goal,
              hasInput: state.task.input !== null,
            }),
            idempotencyKey: `code:${step.stepId}`,
          });
          code = answer.content === null ? null : extractCode(answer.content);
          if (code === null)
            throw Object.assign(new Error('the code model answered without code'), {
              code: ErrorCodes.CODE_GENERATION_FAILED,
              retryable: false,
            });
        } catch (error) {
          const shape = toErrorShape(error);
          // A retryable model failure comes back through redelivery, except on the last delivery,
          // where the step fails with that error rather than leaving the task running forever.
          if (shape.retryable && !delivery.lastDelivery) {
            // Hand the step back so the redelivered message can claim it again.
            await deps.db.prisma.stepRun.updateMany({
              where: { stepId: step.stepId, status: 'generating' },
              data: { status: 'approved' },
            });
            throw error;
          }
          await finishStep(deps, step, taskId, 'generating', { status: 'failed', error: shape });
          deps.kick();
          continue;
        }
      }
      const current = await deps.db.prisma.stepRun.findUnique({
        where: { stepId: step.stepId },
        select: { attempts: true },
      });
      const attempt = (current?.attempts ?? 0) + 1;
      const input = JsonValue.safeParse(state.task.input ?? null);
      const sent = await deps.db.prisma.$transaction(async (tx) => {
        const updated = await tx.stepRun.updateMany({
          where: { stepId: step.stepId, status: 'generating' },
          data: { status: 'running', code, attempts: attempt, startedAt: new Date() },
        });
        if (updated.count === 0) return false;
        await enqueueOutbox(
          tx,
          outboxEvent(
            publisherOptions(deps),
            SandboxRunRequested,
            {
              idempotencyKey: `${step.stepId}:${attempt}`,
              taskId,
              stepId: step.stepId,
              language: args.language,
              code: code ?? '',
              input: input.success ? input.data : null,
              limits: deps.sandboxLimits,
            },
            meta,
          ).message,
        );
        return true;
      });
      if (sent) {
        deps.kick();
        log.info({ taskId, step: step.key, attempt }, 'code sent to the sandbox');
      }
      return;
    }
    // A tool the executor cannot run (added to contracts but not here yet) fails the step, not the process.
    const error = {
      code: ErrorCodes.TOOL_UNKNOWN_FUNCTION,
      message: `the executor cannot run ${step.tool}`,
      retryable: false,
    };
    await finishStep(deps, step, taskId, 'approved', { status: 'failed', error });
    deps.kick();
  }
}

/**
 * Moves a step from `from` to completed or failed and enqueues its `step.finished` event, in one
 * transaction; a conditional update, so a step another replica already moved is left alone.
 */
async function finishStep(
  deps: AdvanceDeps,
  step: StepState,
  taskId: string,
  from: 'approved' | 'generating',
  outcome: { status: 'completed'; value: JsonValue } | { status: 'failed'; error: ErrorShape },
): Promise<boolean> {
  const now = new Date();
  return deps.db.prisma.$transaction(async (tx) => {
    const updated = await tx.stepRun.updateMany({
      where: { stepId: step.stepId, status: from },
      data:
        outcome.status === 'completed'
          ? {
              status: 'completed',
              result: toJsonInput({ value: outcome.value, stdout: '' }),
              startedAt: now,
              finishedAt: now,
              attempts: { increment: 1 },
            }
          : { status: 'failed', error: toJsonInput(outcome.error), finishedAt: now },
    });
    if (updated.count === 0) return false;
    const data =
      outcome.status === 'completed'
        ? {
            taskId,
            stepId: step.stepId,
            key: step.key,
            tool: step.tool,
            status: 'completed' as const,
            value: outcome.value,
          }
        : {
            taskId,
            stepId: step.stepId,
            key: step.key,
            tool: step.tool,
            status: 'failed' as const,
            error: outcome.error,
          };
    await enqueueOutbox(
      tx,
      outboxEvent(publisherOptions(deps), StepFinished, data, { correlationId: taskId, causationId: null })
        .message,
    );
    return true;
  });
}
