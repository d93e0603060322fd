import {
  JsonValue,
  SandboxRunCompleted,
  TandemError,
  type ErrorShape,
  type SandboxOutcome,
} from '@tandem/contracts';
import {
  completeCodeStep,
  enqueueOutbox,
  failStoredStep,
  finishAttempt,
  parseStored,
  planStepOf,
  sandboxRunValue,
  settleFailedCodeStep,
  type Tx,
} from '@tandem/db';
import { advanceTask } from '../advance.js';
import { define } from '../consumers.js';
import { attemptOfKey, decideSandboxResult } from '../domain/sandbox-result.js';
import { stepFinishedMessage } from '../outcomes.js';
import { applySandboxFiles } from '../workspace.js';

/**
 * `sandbox.run-completed`: stores a sandbox result on its step, only for the attempt that is running
 * (`decideSandboxResult` says what it does): success saves the files the program wrote into the
 * workspace; a fixable failure with attempts left hands the step to the code model for a fix (`fixing`);
 * otherwise the step fails. Then moves the task forward.
 */
export const sandboxRunCompleted = define({
  // Wire name: renaming it creates a new durable consumer.
  durable: 'executor-sandbox-run-completed',
  event: SandboxRunCompleted,
  async handle(tx, envelope, context) {
    const run = envelope.data;
    const { deps } = context;
    const step = await planStepOf(tx, run.stepId);
    if (step === null) return;
    const attempt = attemptOfKey(run.idempotencyKey);
    const target = { stepId: run.stepId, attempt };
    const output = { stdout: run.stdout, stderr: run.stderr, outcome: run.outcome, runId: run.runId };
    const decision = decideSandboxResult(run, attempt, deps.maxFixAttempts);
    // A value too large for the event is only in the stored run (a claim check): read it from there.
    const value = run.valueTruncated === true ? await storedRunValue(tx, run.runId) : run.value;
    let error: ErrorShape | null = null;
    if (decision.kind === 'complete') {
      // Claim first, then save the files: a result for an attempt no longer running changes nothing.
      if (!(await completeCodeStep(tx, { ...target, result: { value, ...output } }))) return;
      try {
        await applySandboxFiles(
          tx,
          { taskId: run.taskId, stepId: run.stepId, runId: run.runId },
          deps.workspace,
        );
      } catch (failure) {
        if (!(failure instanceof TandemError) || failure.retryable) throw failure;
        // Nothing was written (the caps are checked first); the step fails with the reason.
        error = failure.toShape();
        await failStoredStep(tx, run.stepId, error);
      }
    } else {
      const fix = decision.kind === 'fix';
      const settled = await settleFailedCodeStep(tx, {
        ...target,
        fix,
        error: decision.error,
        result: { value: null, ...output },
      });
      if (!settled) return;
      error = decision.error;
      if (fix) {
        await finishRunAttempt(tx, run.stepId, attempt, run.outcome, error);
        context.log.info(
          { taskId: run.taskId, step: step.stepKey, attempt, outcome: run.outcome },
          'code failed; asking for a fix',
        );
        return;
      }
    }
    await finishRunAttempt(tx, run.stepId, attempt, run.outcome, error);
    await enqueueOutbox(
      tx,
      stepFinishedMessage(
        deps,
        { stepId: run.stepId, key: step.stepKey, tool: step.tool },
        run.taskId,
        error === null ? { status: 'completed', value } : { status: 'failed', error },
      ),
    );
  },
  async after(_committed, envelope, context) {
    await advanceTask(context.deps, envelope.data.taskId, context.log, {
      lastDelivery: context.lastDelivery,
    });
  },
});

/** Stores the attempt's outcome (and error); a key that names no attempt has no attempt row to update. */
async function finishRunAttempt(
  tx: Tx,
  stepId: string,
  attempt: number | null,
  outcome: SandboxOutcome,
  error: ErrorShape | null,
): Promise<void> {
  if (attempt === null) return;
  await finishAttempt(tx, {
    stepId,
    attempt,
    outcome,
    ...(error === null ? {} : { error }),
    finishedAt: new Date(),
  });
}

/** The value of a stored sandbox run (the sandbox-runner's row, read only), for a result event that left it out. */
async function storedRunValue(tx: Tx, runId: string): Promise<JsonValue | null> {
  const row = await sandboxRunValue(tx, runId);
  if (row === null) return null;
  return parseStored(JsonValue.nullable(), row.value, `SandboxRun.value of run ${runId}`);
}
