import {
  ErrorCodes,
  JsonValue,
  SandboxOutcome,
  boundSandboxEventParts,
  normalizeWorkspacePath,
  toSafeJson,
  toSafeText,
  type BoundedSandboxEventParts,
} from '@tandem/contracts';
import type { SandboxResult } from '../sandbox/types.js';

/*
 * What a sandbox job's run means, without I/O: the result as it is stored once, the fields of its
 * `sandbox.run-completed` event, the end of a job interrupted at every attempt, and whether a queued
 * job may still start. The handler (handlers/sandbox-run-requested.ts) loads and stores around these.
 */

/** A file of a run as stored: written (with its content) or deleted. */
export interface RunFile {
  path: string;
  content?: Uint8Array<ArrayBuffer>;
  size: number;
  deleted: boolean;
}

/** A run's result as it is stored once on its row (and republished from there). */
export interface RunRecord {
  outcome: SandboxOutcome;
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
  files: RunFile[];
}

/** The event's share of a result (cut to the event's bound), with its outcome. */
export type RunEventFields = BoundedSandboxEventParts & {
  outcome: SandboxOutcome;
  exitCode: number | null;
  durationMs: number;
  errorCode?: string;
};

/** A finished run as stored, as a redelivery republishes it. */
export interface StoredRun {
  outcome: SandboxOutcome;
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
  files: ReadonlyArray<{ path: string; size: number; deleted: boolean }>;
}

/** Task run states after which a queued job is not started any more. */
const ENDED: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled']);

/** Whether a job must be killed before it starts: its task's run already ended (cancelled, past its deadline). */
export function killedBeforeStart(taskRunStatus: string | null): boolean {
  return taskRunStatus !== null && ENDED.has(taskRunStatus);
}

/**
 * The stored form of a finished run. Files whose guest-chosen names are not valid workspace paths (the
 * executor saves them into the workspace) are dropped, and the run says its files were truncated;
 * `dropped` says how many.
 */
export function runRecord(result: SandboxResult): { record: RunRecord; dropped: number } {
  const written = result.files.filter((file) => {
    const normalized = normalizeWorkspacePath(file.path);
    return normalized.ok && normalized.path === file.path;
  });
  const dropped = result.files.length - written.length;
  const value = JsonValue.safeParse(result.value ?? null);
  return {
    dropped,
    record: {
      outcome: result.outcome,
      errorMessage: result.errorMessage ?? null,
      stdout: result.stdout,
      stderr: result.stderr,
      stdoutTruncated: result.stdoutTruncated,
      stderrTruncated: result.stderrTruncated,
      value: value.success ? value.data : null,
      exitCode: result.exitCode,
      durationMs: result.durationMs,
      peakMemoryBytes: result.peakMemoryBytes,
      filesTruncated: result.filesTruncated || dropped > 0,
      files: [
        ...written.map((file) => ({
          path: file.path,
          content: new Uint8Array(file.content),
          size: file.content.byteLength,
          deleted: false,
        })),
        ...result.deletedFiles.map((path) => ({ path, size: 0, deleted: true })),
      ],
    },
  };
}

/**
 * The event's share of a result: what the program printed and returned cut to the event's bound (issue
 * 12), made safe for Postgres as the stored row is (so a republish says exactly what the first did).
 */
export function runEventFields(
  result: Omit<RunRecord, 'files'>,
  files: ReadonlyArray<{ path: string; size: number; deleted: boolean }>,
): RunEventFields {
  const safeValue = JsonValue.safeParse(toSafeJson(result.value ?? null));
  const outcome = SandboxOutcome.safeParse(result.outcome);
  return {
    outcome: outcome.success ? outcome.data : 'sandbox_error',
    exitCode: result.exitCode,
    durationMs: result.durationMs,
    ...(typeof result.errorCode === 'string' ? { errorCode: result.errorCode } : {}),
    ...boundSandboxEventParts({
      stdout: toSafeText(result.stdout),
      stderr: toSafeText(result.stderr),
      stdoutTruncated: result.stdoutTruncated,
      stderrTruncated: result.stderrTruncated,
      value: safeValue.success ? safeValue.data : null,
      errorMessage:
        result.errorMessage === undefined || result.errorMessage === null
          ? null
          : toSafeText(result.errorMessage),
      files: files.map((file) => ({ path: toSafeText(file.path), size: file.size, deleted: file.deleted })),
      filesTruncated: result.filesTruncated,
    }),
  };
}

/** The event fields of a stored run, for its republish. */
export function storedRunEventFields(run: StoredRun): RunEventFields {
  return runEventFields(
    {
      outcome: run.outcome,
      errorCode: run.errorCode,
      errorMessage: run.errorMessage,
      stdout: run.stdout,
      stderr: run.stderr,
      stdoutTruncated: run.stdoutTruncated,
      stderrTruncated: run.stderrTruncated,
      value: run.value,
      exitCode: run.exitCode,
      durationMs: run.durationMs,
      filesTruncated: run.filesTruncated,
    },
    run.files,
  );
}

/**
 * The end of a job whose runner stopped at every allowed attempt: `sandbox_error` with
 * `SANDBOX.INTERRUPTED`, no output; it is not run again.
 */
export function interruptedRun(attempts: number): { record: RunRecord; event: RunEventFields } {
  const record: RunRecord = {
    outcome: 'sandbox_error',
    errorCode: ErrorCodes.SANDBOX_INTERRUPTED,
    errorMessage: `the job's runner stopped while running it ${attempts} times; it is not run again`,
    stdout: '',
    stderr: '',
    stdoutTruncated: false,
    stderrTruncated: false,
    value: null,
    exitCode: null,
    durationMs: 0,
    filesTruncated: false,
    files: [],
  };
  return { record, event: { ...runEventFields(record, []), errorCode: ErrorCodes.SANDBOX_INTERRUPTED } };
}

/** The event fields with only the outcome: what goes out if a bounded event were still too large. */
export function outcomeOnly(fields: RunEventFields): RunEventFields {
  return {
    ...fields,
    stdout: '',
    stderr: '',
    stdoutTruncated: true,
    stderrTruncated: true,
    value: null,
    valueTruncated: true,
    files: [],
    filesTruncated: true,
    errorMessage: null,
  };
}
