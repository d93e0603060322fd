import { randomUUID } from 'node:crypto';
import {
  ErrorCodes,
  ErrorShape,
  type JsonValue,
  SandboxRunRequested,
  TandemError,
  modelPreferenceFor,
  toErrorShape,
  type SandboxLimits,
} from '@tandem/contracts';
import {
  claimStep,
  codeStepOf,
  enqueueOutbox,
  handBackStep,
  modelUseOfTask,
  parseStored,
  recordAttempt,
  renewStepClaim,
  startCodeRun,
  transaction,
  workspaceEntries,
  type CodeStepRow,
  type OutboxMessage,
  type StepAttemptOrigin,
  type WorkspaceFileEntry,
} from '@tandem/db';
import { outboxEvent } from '@tandem/service-kit';
import { z } from 'zod';
import type { ExecutorDeps } from '../deps.js';
import { resolvedArguments } from '../domain/advance.js';
import { codePrompt, extractCode, fixPrompt, type CodeRequest, type StepState } from '../domain/progress.js';
import type { RunState } from '../domain/run-state.js';
import { finishStepInTx } from '../outcomes.js';
import { StoredStepResult } from '../state.js';
import type { Delivery, StepRunner } from './step-runner.js';

const RunCodeArguments = z.object({
  language: z.enum(['javascript', 'python']),
  code: z.string().optional(),
  spec: z.string().optional(),
});

/** The `sandbox.run-requested` job of a `run_code` attempt (also what a lost job is requested again with). */
export function sandboxJobMessage(
  deps: { prefix: string; sandboxLimits: SandboxLimits },
  job: {
    sandboxKey: string;
    taskId: string;
    stepId: string;
    language: 'javascript' | 'python';
    code: string;
    input: JsonValue | null;
    files: WorkspaceFileEntry[];
  },
): OutboxMessage {
  return outboxEvent(
    { prefix: deps.prefix, publisher: 'executor' },
    SandboxRunRequested,
    {
      idempotencyKey: job.sandboxKey,
      taskId: job.taskId,
      stepId: job.stepId,
      language: job.language,
      code: job.code,
      input: job.input,
      limits: deps.sandboxLimits,
      files: job.files,
    },
    { correlationId: job.taskId, causationId: null },
  ).message;
}

/**
 * `run_code`: the step is claimed before any model call (`approved` or `fixing` -> `generating`, or a
 * stale claim taken over), so two replicas never both pay for code generation; the claim is renewed
 * while this replica works. Code the plan gave runs as it is; with a `spec` (or for a fix) the code model
 * writes it. Then the step becomes `running`, its attempt is recorded and the sandbox job enqueued, in
 * one transaction; the task waits for the sandbox's answer.
 */
export const runCodeRunner: StepRunner = {
  tool: 'run_code',
  async start(deps, state, step, log, delivery) {
    const taskId = state.task.id;
    const args = RunCodeArguments.parse(resolvedArguments(state.steps, step));
    const before = await codeStepOf(deps.db, step.stepId);
    if (before === null) return false;
    const fixing = before.status === 'fixing';
    // A claim left behind by a crashed replica goes stale and is taken over.
    const claimed = await transaction(deps.db, (tx) =>
      claimStep(tx, {
        planId: state.plan.id,
        stepId: step.stepId,
        from: fixing ? 'fixing' : 'approved',
        to: 'generating',
        staleAfterMs: deps.claimStaleMs,
      }),
    );
    if (!claimed) return false;
    // While this replica works on the step (model call, sending the job), its claim stays fresh, so the
    // stale-step sweep (a short lease) takes over only a claim whose replica stopped.
    const stopHeartbeat = keepClaimFresh(deps, step.stepId);
    try {
      const attempt = before.attempts + 1;
      const files = await workspaceEntries(deps.db, taskId);
      const given = !fixing && args.code !== undefined ? args.code : null;
      const origin: StepAttemptOrigin = fixing ? 'fix' : given !== null ? 'given' : 'generate';
      let code: string;
      if (given !== null) {
        code = given;
      } else {
        const written = await writeCode(deps, state, step, {
          args,
          before,
          fixing,
          attempt,
          files,
          origin,
          delivery,
        });
        if (written === null) return true;
        code = written;
      }
      const sandboxKey = `${step.stepId}:${attempt}`;
      const sent = await transaction(deps.db, async (tx) => {
        if (!(await startCodeRun(tx, { stepId: step.stepId, code, attempt }))) return false;
        await recordAttempt(tx, {
          id: randomUUID(),
          stepId: step.stepId,
          taskId,
          attempt,
          origin,
          code,
          sandboxKey,
          outcome: 'running',
        });
        await enqueueOutbox(
          tx,
          sandboxJobMessage(deps, {
            sandboxKey,
            taskId,
            stepId: step.stepId,
            language: args.language,
            code,
            input: state.task.input,
            files,
          }),
        );
        return true;
      });
      if (sent) log.info({ taskId, step: step.key, attempt, origin }, 'code sent to the sandbox');
      // The task waits for the sandbox's answer either way.
      return false;
    } finally {
      stopHeartbeat();
    }
  },
};

/**
 * Asks the code model for the program (or its fix). A retryable model failure hands the claim back and
 * rethrows (the message comes back), except on the last delivery; any other failure records the attempt
 * `generation_failed` and fails the step: null then.
 */
async function writeCode(
  deps: ExecutorDeps,
  state: RunState,
  step: StepState,
  input: {
    args: z.infer<typeof RunCodeArguments>;
    before: CodeStepRow;
    fixing: boolean;
    attempt: number;
    files: WorkspaceFileEntry[];
    origin: StepAttemptOrigin;
    delivery: Delivery;
  },
): Promise<string | null> {
  const taskId = state.task.id;
  const { args, before, fixing, attempt } = input;
  try {
    const dependencies: Record<string, JsonValue> = {};
    for (const key of state.dependsOn.get(step.key) ?? []) {
      const other = state.steps.find((candidate) => candidate.key === key);
      if (other?.result) dependencies[key] = other.result.value;
    }
    const request: CodeRequest = {
      language: args.language,
      spec: args.spec ?? 'Make the program below work as intended.',
      goal: state.task.goal,
      hasInput: state.task.input !== null,
      dependencies,
      files: input.files.map((file) => file.path),
      patterns: await deps.codePatterns(args.language),
    };
    const previous = parseStored(
      StoredStepResult.nullable(),
      before.result,
      `StepRun.result of step ${step.stepId}`,
    );
    const previousError = parseStored(
      ErrorShape.nullable(),
      before.error,
      `StepRun.error of step ${step.stepId}`,
    );
    const messages =
      fixing && before.code !== null
        ? fixPrompt(request, {
            code: before.code,
            error: previousError ?? {
              code: ErrorCodes.STEP_FAILED,
              message: 'the program failed',
              retryable: false,
            },
            stderr: previous?.stderr ?? '',
          })
        : codePrompt(request);
    const answer = await deps.codeModel.complete({
      taskId,
      messages,
      idempotencyKey: `code:${step.stepId}:${attempt}`,
      preference: modelPreferenceFor(state.preferences, 'code'),
      budget: state.budget,
      spent:
        state.budget === undefined
          ? { tokens: 0, costUsd: 0, calls: 0 }
          : await modelUseOfTask(deps.db, taskId),
    });
    const code = answer.content === null ? null : extractCode(answer.content);
    if (code === null)
      throw new TandemError(ErrorCodes.CODE_GENERATION_FAILED, 'the code model answered without code');
    if (code.length > deps.maxCodeChars)
      throw new TandemError(
        ErrorCodes.CODE_GENERATION_FAILED,
        `the code model wrote ${code.length} characters; the limit is ${deps.maxCodeChars}`,
      );
    return code;
  } catch (error) {
    const shape = toErrorShape(error);
    // A retryable model failure comes back through redelivery, except on the last delivery, where the
    // step fails with that error rather than leaving the task running forever.
    if (shape.retryable && !input.delivery.lastDelivery) {
      // Hand the step back so the redelivered message can claim it again.
      await handBackStep(deps.db, step.stepId, fixing ? 'fixing' : 'approved');
      throw error;
    }
    await recordAttempt(deps.db, {
      id: randomUUID(),
      stepId: step.stepId,
      taskId,
      attempt,
      origin: input.origin,
      outcome: 'generation_failed',
      error: shape,
      finishedAt: new Date(),
    });
    await transaction(deps.db, (tx) =>
      finishStepInTx(tx, deps, step, taskId, ['generating'], {
        status: 'failed',
        error: { ...shape, retryable: false },
      }),
    );
    return null;
  }
}

/** Touches a `generating` step every third of the lease until stopped; returns the stop function. */
function keepClaimFresh(deps: Pick<ExecutorDeps, 'db' | 'claimStaleMs' | 'log'>, stepId: string): () => void {
  const timer = setInterval(
    () => {
      renewStepClaim(deps.db, stepId).catch((error: unknown) =>
        deps.log.warn({ err: error, stepId }, 'could not renew a step claim'),
      );
    },
    Math.max(50, Math.floor(deps.claimStaleMs / 3)),
  );
  timer.unref();
  return () => clearInterval(timer);
}
