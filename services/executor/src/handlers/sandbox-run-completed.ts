import type { Envelope, EventData, SandboxRunCompleted } from '@tandem/contracts';
import { JsonValue, TandemError } from '@tandem/contracts';
import { enqueueOutboxPrisma, markProcessedPrisma } from '@tandem/db';
import { toJsonInput, type Log } from '@tandem/service-kit';
import { advanceTask, stepFinishedMessage, type AdvanceDeps } from '../advance.js';
import { isFixable, sandboxError } from '../domain/progress.js';
import { applySandboxFiles } from '../workspace.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const EXECUTOR_SANDBOX_CONSUMER = 'executor-sandbox-run-completed';

/**
 * Stores a sandbox result on its step (only for the attempt that is running): success saves the files the
 * program wrote into the workspace; a fixable failure with attempts left hands the step to the code model
 * for a fix (`fixing`); otherwise the step fails. Then moves the task forward.
 */
export async function handleSandboxRunCompleted(
  deps: AdvanceDeps,
  envelope: Envelope<EventData<typeof SandboxRunCompleted>>,
  context: { messageId: string; deliveryCount: number; log: Log },
): Promise<void> {
  const run = envelope.data;
  const attempt = Number(run.idempotencyKey.split(':').pop());
  // A value too large for the event is only in the stored run (a claim check): read it from there.
  const value = run.valueTruncated === true ? await storedRunValue(deps, run.runId) : run.value;
  let changed = false;
  await deps.db.prisma.$transaction(async (tx) => {
    if (!(await markProcessedPrisma(tx, EXECUTOR_SANDBOX_CONSUMER, context.messageId))) return;
    const step = await tx.planStep.findUnique({
      where: { id: run.stepId },
      select: { stepKey: true, tool: true },
    });
    if (!step) return;
    const where = {
      stepId: run.stepId,
      status: 'running',
      ...(Number.isInteger(attempt) ? { attempts: attempt } : {}),
    };
    const output = { stdout: run.stdout, stderr: run.stderr, outcome: run.outcome, runId: run.runId };
    const failure =
      run.outcome === 'ok'
        ? null
        : sandboxError(run.outcome, {
            stderr: run.stderr,
            errorMessage: run.errorMessage ?? null,
            exitCode: run.exitCode,
          });
    // A typed reason from the runner (e.g. SANDBOX.INTERRUPTED) is the step's error code.
    let error =
      failure !== null && run.errorCode !== undefined
        ? { ...failure, code: run.errorCode, message: run.errorMessage ?? failure.message }
        : failure;
    if (error === null) {
      // Claim first, then save the files: a result for an attempt no longer running changes nothing.
      const claimed = await tx.stepRun.updateMany({
        where,
        data: {
          status: 'completed',
          result: toJsonInput({ value, ...output }),
          finishedAt: new Date(),
        },
      });
      if (claimed.count === 0) return;
      try {
        await applySandboxFiles(
          tx,
          { taskId: run.taskId, stepId: run.stepId, runId: run.runId },
          deps.workspace,
        );
      } catch (failure) {
        if (!(failure instanceof TandemError)) throw failure;
        // Nothing was written (the caps are checked first); the step fails with the reason.
        error = failure.toShape();
        await tx.stepRun.update({
          where: { stepId: run.stepId },
          data: { status: 'failed', error: toJsonInput(error) },
        });
      }
    } else {
      const fix = isFixable(run.outcome) && Number.isInteger(attempt) && attempt <= deps.maxFixAttempts;
      const claimed = await tx.stepRun.updateMany({
        where,
        data: {
          status: fix ? 'fixing' : 'failed',
          error: toJsonInput(error),
          result: toJsonInput({ value: null, ...output }),
          ...(fix ? {} : { finishedAt: new Date() }),
        },
      });
      if (claimed.count === 0) return;
      if (fix) {
        await tx.stepAttempt.updateMany({
          where: { stepId: run.stepId, attempt },
          data: { outcome: run.outcome, error: toJsonInput(error), finishedAt: new Date() },
        });
        changed = true;
        context.log.info(
          { taskId: run.taskId, step: step.stepKey, attempt, outcome: run.outcome },
          'code failed; asking for a fix',
        );
        return;
      }
    }
    changed = true;
    await tx.stepAttempt.updateMany({
      where: { stepId: run.stepId, attempt },
      data: { outcome: run.outcome, ...(error ? { error: toJsonInput(error) } : {}), finishedAt: new Date() },
    });
    await enqueueOutboxPrisma(
      tx,
      stepFinishedMessage(
        deps,
        { stepId: run.stepId, key: step.stepKey, tool: step.tool },
        run.taskId,
        error === null ? { status: 'completed', value } : { status: 'failed', error },
      ),
    );
  });
  if (changed) deps.kick();
  await advanceTask(deps, run.taskId, context.log, {
    lastDelivery: context.deliveryCount >= deps.maxDeliver,
  });
}

/** The value of a stored sandbox run (the sandbox-runner's row, read only), for a result event that left it out. */
async function storedRunValue(deps: AdvanceDeps, runId: string): Promise<JsonValue | null> {
  const row = await deps.db.prisma.sandboxRun.findUnique({ where: { id: runId }, select: { value: true } });
  if (!row) return null;
  const parsed = JsonValue.safeParse(row.value ?? null);
  return parsed.success ? parsed.data : null;
}
