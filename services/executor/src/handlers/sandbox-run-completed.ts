import { StepFinished, type Envelope, type EventData, type SandboxRunCompleted } from '@tandem/contracts';
import { enqueueOutbox, markProcessed } from '@tandem/db';
import { outboxEvent, toJsonInput, type Log } from '@tandem/service-kit';
import { advanceTask, type AdvanceDeps } from '../advance.js';
import { sandboxError } from '../domain/progress.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const EXECUTOR_SANDBOX_CONSUMER = 'executor-sandbox-run-completed';

/** Stores a sandbox result on its step (only for the attempt that is running), then moves the task forward. */
export async function handleSandboxRunCompleted(
  deps: AdvanceDeps,
  envelope: Envelope<EventData<typeof SandboxRunCompleted>>,
  context: { messageId: string; deliveryCount: number; log: Log },
): Promise<void> {
  const run = envelope.data;
  const attempt = Number(run.idempotencyKey.split(':').pop());
  let changed = false;
  await deps.db.prisma.$transaction(async (tx) => {
    if (!(await markProcessed(tx, EXECUTOR_SANDBOX_CONSUMER, context.messageId))) return;
    const step = await tx.planStep.findUnique({
      where: { id: run.stepId },
      select: { stepKey: true, tool: true },
    });
    if (!step) return;
    const ok = run.outcome === 'ok';
    const error = ok
      ? null
      : sandboxError(run.outcome, {
          stderr: run.stderr,
          errorMessage: run.errorMessage ?? null,
          exitCode: run.exitCode,
        });
    const updated = await tx.stepRun.updateMany({
      where: {
        stepId: run.stepId,
        status: 'running',
        ...(Number.isInteger(attempt) ? { attempts: attempt } : {}),
      },
      data: ok
        ? {
            status: 'completed',
            result: {
              value: run.value,
              stdout: run.stdout,
              stderr: run.stderr,
              outcome: run.outcome,
              runId: run.runId,
            },
            finishedAt: new Date(),
          }
        : {
            status: 'failed',
            error: toJsonInput(error),
            result: {
              value: null,
              stdout: run.stdout,
              stderr: run.stderr,
              outcome: run.outcome,
              runId: run.runId,
            },
            finishedAt: new Date(),
          },
    });
    if (updated.count === 0) return;
    changed = true;
    await enqueueOutbox(
      tx,
      outboxEvent(
        { prefix: deps.prefix, publisher: 'executor' },
        StepFinished,
        {
          taskId: run.taskId,
          stepId: run.stepId,
          key: step.stepKey,
          tool: step.tool,
          status: ok ? 'completed' : 'failed',
          value: run.value,
          error,
        },
        { correlationId: run.taskId, causationId: envelope.id },
      ).message,
    );
  });
  if (changed) deps.kick();
  await advanceTask(deps, run.taskId, context.log, {
    lastDelivery: context.deliveryCount >= deps.maxDeliver,
  });
}
