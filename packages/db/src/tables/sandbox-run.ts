import { JsonValue } from '@tandem/contracts';
import { json } from '../column-types.js';
import type { Db } from '../client.js';
import type { DB } from '../generated/kysely.js';
import { parseStored } from '../rows.js';
import { toText } from '../text.js';
import { transaction, type Tx } from '../transaction.js';
import { insertSandboxRunFiles, sandboxRunFiles, type SandboxRunFileInput } from './sandbox-run-file.js';

/*
 * The SandboxRun table: the one module that writes it (writer: sandbox-runner, issue 12). A job records
 * that it STARTED, keyed by its idempotency key, before its program runs; its result is stored once on
 * that row. A redelivery then finds either a finished row (republish it, run nothing) or a running one
 * (the runner that had it died: a deliberate re-run, counted in `attempts`, up to a limit).
 */

/** The values SandboxRun.outcome takes (its CHECK constraint). */
export type SandboxRunOutcome = NonNullable<DB['SandboxRun']['outcome']>;
/** The values SandboxRun.language takes (its CHECK constraint). */
export type SandboxRunLanguage = DB['SandboxRun']['language'];

/** What identifies a job when it starts. */
export interface SandboxRunStart {
  /** The run id this start uses when it creates the row. */
  id: string;
  idempotencyKey: string;
  taskId: string;
  stepId: string;
  language: SandboxRunLanguage;
  codeHash: string;
  /** The limits the job runs under (stored as jsonb). */
  limits: JsonValue;
}

/** A finished run as stored (what a redelivery republishes). */
export interface StoredSandboxRun {
  runId: string;
  attempts: number;
  outcome: SandboxRunOutcome;
  errorCode: string | null;
  errorMessage: string | null;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  filesTruncated: boolean;
  value: JsonValue | null;
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
 * below `maxAttempts`, else `exhausted`. The row is locked while deciding (`FOR UPDATE`), so two
 * redeliveries never claim the same attempt.
 */
export async function startSandboxRun(
  db: Pick<Db, 'kysely' | 'pool'>,
  start: SandboxRunStart,
  options: { maxAttempts: number },
): Promise<SandboxRunStarted> {
  return transaction(db, async (tx) => {
    const now = new Date();
    const created = await tx
      .insertInto('SandboxRun')
      .values({
        id: start.id,
        idempotencyKey: start.idempotencyKey,
        taskId: start.taskId,
        stepId: start.stepId,
        language: start.language,
        codeHash: start.codeHash,
        limits: json(start.limits),
        status: 'running',
        attempts: 1,
        startedAt: now,
        createdAt: now,
      })
      .onConflict((conflict) => conflict.doNothing())
      .executeTakeFirst();
    if (created.numInsertedOrUpdatedRows === 1n) return { state: 'started', runId: start.id, attempt: 1 };
    const row = await tx
      .selectFrom('SandboxRun')
      .selectAll()
      .where('idempotencyKey', '=', start.idempotencyKey)
      .forUpdate()
      .executeTakeFirst();
    if (!row) throw new Error(`SandboxRun ${start.idempotencyKey} vanished while it was being started`);
    if (row.status === 'finished') {
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
          value: row.value === null ? null : parseStored(JsonValue, row.value, 'SandboxRun.value'),
          exitCode: row.exitCode,
          durationMs: row.durationMs ?? 0,
          files: await sandboxRunFiles(tx, row.id),
        },
      };
    }
    if (row.attempts >= options.maxAttempts)
      return { state: 'exhausted', runId: row.id, attempts: row.attempts };
    const attempt = row.attempts + 1;
    await tx
      .updateTable('SandboxRun')
      .set({ attempts: attempt, startedAt: now })
      .where('id', '=', row.id)
      .execute();
    return { state: 'started', runId: row.id, attempt };
  });
}

/** The result of a run, as it is stored once on its row. */
export interface SandboxRunResult {
  outcome: SandboxRunOutcome;
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
  files: SandboxRunFileInput[];
}

/**
 * Stores a run's result on its `running` row, in the caller's transaction, only for the attempt that
 * holds it: false (nothing written) when the row already finished or a later attempt took over, so a
 * runner that comes back from the dead cannot overwrite or duplicate a result. Everything the program
 * chose (its output, result and file names) is made safe for Postgres first: NUL and lone surrogates
 * become U+FFFD, so a program cannot make its own result unstorable.
 */
export async function finishSandboxRun(
  tx: Tx,
  run: { runId: string; attempt: number },
  result: SandboxRunResult,
): Promise<boolean> {
  const stored = await tx
    .updateTable('SandboxRun')
    .set({
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
      // SQL NULL when the program gave no result (not the JSON null).
      value: result.value === null || result.value === undefined ? null : json(result.value),
      exitCode: result.exitCode,
      durationMs: result.durationMs,
      peakMemoryBytes:
        typeof result.peakMemoryBytes === 'number' ? BigInt(result.peakMemoryBytes).toString() : null,
      filesTruncated: result.filesTruncated,
    })
    .where('id', '=', run.runId)
    .where('status', '=', 'running')
    .where('attempts', '=', run.attempt)
    .executeTakeFirst();
  if (stored.numUpdatedRows === 0n) return false;
  await insertSandboxRunFiles(tx, run.runId, result.files);
  return true;
}
