import type { Db, PrismaTx } from './client.js';
import { Prisma } from './generated/prisma/client.js';
import { toJsonText, toText } from './text.js';

/*
 * The sandbox-runner's store of runs (issue 12). A job records that it STARTED, keyed by its
 * idempotency key, before its program runs; its result is stored once on that row. A redelivery then
 * finds either a finished row (republish it, run nothing) or a running one (the runner that had it died:
 * a deliberate re-run, counted in `attempts`, up to a limit).
 */

/** What identifies a job when it starts. */
export interface SandboxRunStart {
  /** The run id this start uses when it creates the row. */
  id: string;
  idempotencyKey: string;
  taskId: string;
  stepId: string;
  language: string;
  codeHash: string;
  limits: Prisma.InputJsonValue;
}

/** A finished run as stored (what a redelivery republishes). */
export interface StoredSandboxRun {
  runId: string;
  attempts: number;
  outcome: string;
  errorCode: string | null;
  errorMessage: string | null;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  filesTruncated: boolean;
  value: Prisma.JsonValue | null;
  exitCode: number | null;
  durationMs: number;
  files: Array<{ path: string; size: number; deleted: boolean }>;
}

/** What {@link startSandboxRun} found. */
export type SandboxRunStarted =
  /** Run the program now, as attempt `attempt` (above 1: the runner of the previous attempt died). */
  | { state: 'started'; runId: string; attempt: number }
  /** The job already finished: republish this, run nothing. */
  | { state: 'finished'; run: StoredSandboxRun }
  /** Every allowed attempt was started and none finished: end the job without running it. */
  | { state: 'exhausted'; runId: string; attempts: number };

/**
 * Records that a job starts, in its own transaction, before the program runs: a new key gets a `running`
 * row (attempt 1); a finished key returns its stored result; a `running` key (its runner died, or a
 * replica is still on it past its ack wait) is claimed again as the next attempt while `attempts` is
 * below `maxAttempts`, else `exhausted`. The row is locked while deciding, so two redeliveries never
 * claim the same attempt.
 */
export async function startSandboxRun(
  db: Pick<Db, 'prisma'>,
  start: SandboxRunStart,
  options: { maxAttempts: number },
): Promise<SandboxRunStarted> {
  return db.prisma.$transaction(async (tx) => {
    const now = new Date();
    const created = await tx.sandboxRun.createMany({
      data: [
        {
          id: start.id,
          idempotencyKey: start.idempotencyKey,
          taskId: start.taskId,
          stepId: start.stepId,
          language: start.language,
          codeHash: start.codeHash,
          limits: start.limits,
          status: 'running',
          attempts: 1,
          startedAt: now,
        },
      ],
      skipDuplicates: true,
    });
    if (created.count === 1) return { state: 'started', runId: start.id, attempt: 1 };
    await tx.$executeRaw`SELECT 1 FROM "SandboxRun" WHERE "idempotencyKey" = ${start.idempotencyKey} FOR UPDATE`;
    const row = await tx.sandboxRun.findUnique({ where: { idempotencyKey: start.idempotencyKey } });
    if (!row) throw new Error(`SandboxRun ${start.idempotencyKey} vanished while it was being started`);
    if (row.status === 'finished') {
      const files = await tx.sandboxRunFile.findMany({
        where: { runId: row.id },
        select: { path: true, size: true, deleted: true },
        orderBy: { path: 'asc' },
      });
      return {
        state: 'finished',
        run: {
          runId: row.id,
          attempts: row.attempts,
          outcome: row.outcome ?? 'sandbox_error',
          errorCode: row.errorCode,
          errorMessage: row.errorMessage,
          stdout: row.stdout,
          stderr: row.stderr,
          stdoutTruncated: row.stdoutTruncated,
          stderrTruncated: row.stderrTruncated,
          filesTruncated: row.filesTruncated,
          value: row.value,
          exitCode: row.exitCode,
          durationMs: row.durationMs ?? 0,
          files,
        },
      };
    }
    if (row.attempts >= options.maxAttempts)
      return { state: 'exhausted', runId: row.id, attempts: row.attempts };
    const attempt = row.attempts + 1;
    await tx.sandboxRun.update({ where: { id: row.id }, data: { attempts: attempt, startedAt: now } });
    return { state: 'started', runId: row.id, attempt };
  });
}

/** The result of a run, as it is stored once on its row. */
export interface SandboxRunResult {
  outcome: string;
  errorCode?: string | null;
  errorMessage?: string | null;
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
 * Stores a run's result on its `running` row, in the caller's transaction, only for the attempt that
 * holds it: false (nothing written) when the row already finished or a later attempt took over, so a
 * runner that comes back from the dead cannot overwrite or duplicate a result. Everything the program
 * chose (its output, result and file names) is made safe for Postgres first: NUL and lone surrogates
 * become U+FFFD, so a program cannot make its own result unstorable.
 */
export async function finishSandboxRun(
  tx: PrismaTx,
  run: { runId: string; attempt: number },
  result: SandboxRunResult,
): Promise<boolean> {
  const value =
    result.value === null || result.value === undefined ? Prisma.DbNull : safeJsonInput(result.value);
  const stored = await tx.sandboxRun.updateMany({
    where: { id: run.runId, status: 'running', attempts: run.attempt },
    data: {
      status: 'finished',
      finishedAt: new Date(),
      outcome: result.outcome,
      errorCode: result.errorCode ?? null,
      errorMessage:
        result.errorMessage === undefined || result.errorMessage === null
          ? null
          : toText(result.errorMessage),
      stdout: toText(result.stdout),
      stderr: toText(result.stderr),
      stdoutTruncated: result.stdoutTruncated,
      stderrTruncated: result.stderrTruncated,
      value,
      exitCode: result.exitCode,
      durationMs: result.durationMs,
      peakMemoryBytes: typeof result.peakMemoryBytes === 'number' ? BigInt(result.peakMemoryBytes) : null,
      filesTruncated: result.filesTruncated,
    },
  });
  if (stored.count === 0) return false;
  if (result.files.length > 0) {
    await tx.sandboxRunFile.createMany({
      data: result.files.map((file) => ({
        runId: run.runId,
        path: toText(file.path),
        ...(file.content === undefined ? {} : { content: file.content }),
        size: file.size,
        deleted: file.deleted,
      })),
    });
  }
  return true;
}

/** A JSON value made safe and typed for a Prisma Json column (parsed back from its safe text). */
function safeJsonInput(value: unknown): Prisma.InputJsonValue {
  const parsed: Prisma.InputJsonValue = JSON.parse(toJsonText(value));
  return parsed;
}
