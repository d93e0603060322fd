import { createHash, randomUUID } from 'node:crypto';
import {
  JsonValue,
  SandboxRunCompleted,
  type Envelope,
  type EventData,
  type SandboxRunRequested,
} from '@tandem/contracts';
import { enqueueOutbox, isUniqueViolation, markProcessed, type Db } from '@tandem/db';
import { outboxEvent, toJsonInput, type Log } from '@tandem/service-kit';
import type { SandboxBackend, SandboxResult } from '../sandbox/index.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const RUN_REQUESTED_CONSUMER = 'sandbox-run-requested';

/** Operator ceilings applied to every job. */
export interface LimitCeilings {
  maxTimeoutMs: number;
  maxOutputBytes: number;
}

/**
 * Runs a job at most once per idempotency key: a key already stored is not run again (its result event
 * was enqueued with the row). The job runs outside any transaction; the run row, the processed marker and
 * the result event commit together afterwards.
 */
export async function handleRunRequested(
  deps: {
    db: Db;
    prefix: string;
    backend: SandboxBackend;
    ceilings: LimitCeilings;
    kick: () => void;
    onRun?: (result: SandboxResult, language: string) => void;
  },
  envelope: Envelope<EventData<typeof SandboxRunRequested>>,
  context: { messageId: string; log: Log },
): Promise<void> {
  const job = envelope.data;
  const existing = await deps.db.prisma.sandboxRun.findUnique({
    where: { idempotencyKey: job.idempotencyKey },
    select: { id: true },
  });
  if (existing) {
    await deps.db.prisma.$transaction(async (tx) => {
      await markProcessed(tx, RUN_REQUESTED_CONSUMER, context.messageId);
    });
    context.log.info(
      { key: job.idempotencyKey, runId: existing.id },
      'sandbox job already ran; not running it again',
    );
    return;
  }
  const limits = {
    timeoutMs: Math.min(job.limits.timeoutMs, deps.ceilings.maxTimeoutMs),
    maxOutputBytes: Math.min(job.limits.maxOutputBytes, deps.ceilings.maxOutputBytes),
    ...(job.limits.memoryMb === undefined ? {} : { memoryMb: job.limits.memoryMb }),
  };
  const result = await deps.backend.run({
    language: job.language,
    code: job.code,
    input: job.input ?? null,
    limits,
  });
  deps.onRun?.(result, job.language);
  const value = JsonValue.safeParse(result.value ?? null);
  const runId = randomUUID();
  const { message } = outboxEvent(
    { prefix: deps.prefix, publisher: 'sandbox-runner' },
    SandboxRunCompleted,
    {
      idempotencyKey: job.idempotencyKey,
      runId,
      taskId: job.taskId,
      stepId: job.stepId,
      outcome: result.outcome,
      stdout: result.stdout,
      stderr: result.stderr,
      stdoutTruncated: result.stdoutTruncated,
      stderrTruncated: result.stderrTruncated,
      value: value.success ? value.data : null,
      exitCode: result.exitCode,
      durationMs: result.durationMs,
      errorMessage: result.errorMessage ?? null,
    },
    { correlationId: job.taskId, causationId: envelope.id },
  );
  try {
    await deps.db.prisma.$transaction(async (tx) => {
      await markProcessed(tx, RUN_REQUESTED_CONSUMER, context.messageId);
      await tx.sandboxRun.create({
        data: {
          id: runId,
          idempotencyKey: job.idempotencyKey,
          taskId: job.taskId,
          stepId: job.stepId,
          language: job.language,
          codeHash: createHash('sha256').update(job.code).digest('hex'),
          limits: toJsonInput(limits),
          outcome: result.outcome,
          stdout: result.stdout,
          stderr: result.stderr,
          stdoutTruncated: result.stdoutTruncated,
          stderrTruncated: result.stderrTruncated,
          ...(value.success && value.data !== null ? { value: toJsonInput(value.data) } : {}),
          exitCode: result.exitCode,
          durationMs: result.durationMs,
        },
      });
      await enqueueOutbox(tx, message);
    });
  } catch (error) {
    // Another replica ran the same key at the same moment and stored first: its result stands.
    if (isUniqueViolation(error)) {
      context.log.warn(
        { key: job.idempotencyKey },
        'a concurrent run of the same job stored first; discarding this result',
      );
      return;
    }
    throw error;
  }
  deps.kick();
  context.log.info(
    { key: job.idempotencyKey, outcome: result.outcome, durationMs: result.durationMs },
    'sandbox job finished',
  );
}
