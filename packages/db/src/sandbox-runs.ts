import type { Tx } from './client.js';
import type { Prisma } from './generated/prisma/client.js';
import { toJsonText, toText } from './text.js';

/** A finished sandbox run as the sandbox-runner stores it, with the files the program wrote or deleted. */
export interface SandboxRunInput {
  id: string;
  idempotencyKey: string;
  taskId: string;
  stepId: string;
  language: string;
  codeHash: string;
  limits: Prisma.InputJsonValue;
  outcome: string;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  /** The program's result; null when it gave none. */
  value: unknown;
  exitCode: number | null;
  durationMs: number;
  peakMemoryBytes?: number | null | undefined;
  filesTruncated: boolean;
  files: Array<{ path: string; content?: Uint8Array<ArrayBuffer>; size: number; deleted: boolean }>;
}

/**
 * Writes a finished sandbox run and its files in the caller's transaction. Everything the program chose
 * (its output and result) is made safe for Postgres first: NUL and lone surrogates become U+FFFD, so a
 * program cannot make its own result unstorable (which would run it again on every redelivery).
 */
export async function createSandboxRun(tx: Tx, input: SandboxRunInput): Promise<void> {
  const value: Prisma.InputJsonValue | undefined =
    input.value === null || input.value === undefined ? undefined : safeJsonInput(input.value);
  await tx.sandboxRun.create({
    data: {
      id: input.id,
      idempotencyKey: input.idempotencyKey,
      taskId: input.taskId,
      stepId: input.stepId,
      language: input.language,
      codeHash: input.codeHash,
      limits: input.limits,
      outcome: input.outcome,
      stdout: toText(input.stdout),
      stderr: toText(input.stderr),
      stdoutTruncated: input.stdoutTruncated,
      stderrTruncated: input.stderrTruncated,
      ...(value === undefined ? {} : { value }),
      exitCode: input.exitCode,
      durationMs: input.durationMs,
      ...(typeof input.peakMemoryBytes === 'number'
        ? { peakMemoryBytes: BigInt(input.peakMemoryBytes) }
        : {}),
      filesTruncated: input.filesTruncated,
    },
  });
  if (input.files.length > 0) {
    await tx.sandboxRunFile.createMany({
      data: input.files.map((file) => ({
        runId: input.id,
        path: toText(file.path),
        ...(file.content === undefined ? {} : { content: file.content }),
        size: file.size,
        deleted: file.deleted,
      })),
    });
  }
}

/** A JSON value made safe and typed for a Prisma Json column (parsed back from its safe text). */
function safeJsonInput(value: unknown): Prisma.InputJsonValue {
  const parsed: Prisma.InputJsonValue = JSON.parse(toJsonText(value));
  return parsed;
}
