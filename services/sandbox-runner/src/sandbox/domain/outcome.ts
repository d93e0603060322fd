/**
 * Outcome interpretation: what a box's exit, signal, streams and report mean for the job. Pure: it reads
 * only what the supervisor observed (`BoxProcessOutcome`) and what the job's cgroup recorded.
 */
import { constants as osConstants } from 'node:os';

import type { BoxProcessOutcome, CappedBytes, KillReason } from '../box-process.js';
import type { CgroupStats } from '../cgroups.js';
import { parseGuestReport } from '../guest-report.js';
import type { SandboxJob, SandboxOutcome, SandboxResult } from '../types.js';
import type { CollectedFiles } from '../work-files.js';

/** Drops a trailing partial UTF-8 sequence left by a byte cap, so the text does not end in U+FFFD. */
export function decodeCapped(captured: CappedBytes): string {
  let bytes = captured.bytes;
  if (captured.truncated) {
    let start = bytes.length - 1;
    while (start > 0 && bytes.length - start < 4 && ((bytes[start] ?? 0) & 0xc0) === 0x80) start -= 1;
    const lead = bytes[start] ?? 0;
    const width = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (start >= 0 && bytes.length - start < width) bytes = bytes.subarray(0, start);
  }
  return bytes.toString('utf8');
}

function signalName(number: number): string | null {
  for (const [name, value] of Object.entries(osConstants.signals)) if (value === number) return name;
  return null;
}

const KILL_MESSAGES: Record<KillReason, (job: SandboxJob, maxResultBytes: number) => string> = {
  timeout: (job) => `the program exceeded its time limit of ${job.limits.timeoutMs} ms`,
  stdout_limit: (job) => `stdout exceeded ${job.limits.maxOutputBytes} bytes`,
  stderr_limit: (job) => `stderr exceeded ${job.limits.maxOutputBytes} bytes`,
  result_limit: (_job, maxResultBytes) => `the result exceeded ${maxResultBytes} bytes`,
  aborted: () => 'the run was aborted by the runner',
};

const KILL_OUTCOMES: Record<KillReason, SandboxOutcome> = {
  timeout: 'timeout',
  stdout_limit: 'output_limit',
  stderr_limit: 'output_limit',
  result_limit: 'output_limit',
  aborted: 'killed',
};

/** A result before the working directory is collected. */
export type ProcessResult = Omit<SandboxResult, keyof CollectedFiles>;

/** What the interpretation names besides the job and the observation. */
export interface InterpretContext {
  /** The binary that was started (named when it could not be). */
  bwrapPath: string;
  /** The cap on the result, named in `output_limit` messages. */
  maxResultBytes: number;
  /** The memory limit the job ran under, named in memory_limit messages. */
  memoryMb: number;
}

/** Turns what was observed about a box into the job's result. Pure. */
export function interpretOutcome(
  job: SandboxJob,
  observed: BoxProcessOutcome,
  { bwrapPath, maxResultBytes, memoryMb }: InterpretContext,
): ProcessResult {
  const stdout = decodeCapped(observed.stdout);
  const stderr = decodeCapped(observed.stderr);
  const base = {
    stdout,
    stderr,
    stdoutTruncated: observed.stdout.truncated,
    stderrTruncated: observed.stderr.truncated,
    value: null,
    durationMs: observed.durationMs,
  };

  if (observed.spawnError !== null) {
    return {
      ...base,
      outcome: 'sandbox_error',
      exitCode: null,
      signal: null,
      errorMessage: `could not start bubblewrap at ${bwrapPath}: ${observed.spawnError.message}`,
    };
  }

  // bwrap exits with the guest's code, or 128 + n when the guest died by signal n. A guest that exits
  // with such a code on purpose is indistinguishable, and is reported as killed by that signal.
  const report = parseGuestReport(observed.result.bytes);
  let exitCode = observed.exitCode;
  let signal: string | null = observed.signal;
  if (observed.endedByReport) {
    // Ended by the runner once the wrapper had reported and closed its channel: the wrapper's own exit code
    // would have followed its report (0 after ok, 1 after an error).
    exitCode = report.kind === 'ok' || report.kind === 'none' ? 0 : 1;
    signal = null;
  }
  if (signal === null && exitCode !== null && exitCode > 128 && exitCode <= 128 + 64) {
    const name = signalName(exitCode - 128);
    if (name !== null) {
      signal = name;
      exitCode = null;
    }
  }

  if (observed.killReason !== null) {
    return {
      ...base,
      outcome: KILL_OUTCOMES[observed.killReason],
      exitCode: null,
      signal: 'SIGKILL',
      errorMessage: KILL_MESSAGES[observed.killReason](job, maxResultBytes),
    };
  }

  const status = { exitCode, signal };

  if (
    report.kind === 'not-started' &&
    job.limits.memoryMb !== undefined &&
    /out of memory|\bOOM\b/i.test(stderr)
  ) {
    // A heap cap too small for the interpreter's own start-up (seen: node with 1 MB).
    return {
      ...base,
      ...status,
      outcome: 'memory_limit',
      errorMessage: `the memory limit of ${job.limits.memoryMb} MB is too small to start the ${job.language} interpreter`,
    };
  }
  if (report.kind === 'not-started') {
    const detail = stderr.trim().split('\n').slice(-3).join(' ').slice(0, 500);
    return {
      ...base,
      ...status,
      outcome: 'sandbox_error',
      errorMessage: `the sandbox did not start the ${job.language} interpreter${detail === '' ? '' : `: ${detail}`}`,
    };
  }
  if (report.kind === 'invalid') return { ...base, ...status, outcome: 'error', errorMessage: report.reason };

  if (exitCode === 0) {
    if (report.kind === 'ok') return { ...base, ...status, outcome: 'ok', value: report.value };
    // The program ended the process itself (sys.exit(0), process.exit(0)) before a result was sent.
    if (report.kind === 'none') return { ...base, ...status, outcome: 'ok' };
    return {
      ...base,
      ...status,
      outcome: 'error',
      errorMessage: `exit code 0 after an error report: ${report.message}`,
    };
  }

  if (report.kind === 'error') {
    if (report.errorKind === 'memory') {
      // The engine's or interpreter's own words, with the job's limit beside them.
      const errorMessage = `${report.message} (the job's memory limit is ${memoryMb} MB)`;
      return { ...base, ...status, outcome: 'memory_limit', errorMessage };
    }
    const outcome = report.errorKind === 'timeout' ? 'timeout' : 'error';
    return { ...base, ...status, outcome, errorMessage: report.message };
  }
  // V8 aborts on heap exhaustion instead of throwing; the message is the only sign.
  if (job.language === 'javascript' && signal === 'SIGABRT' && stderr.includes('heap out of memory')) {
    return {
      ...base,
      ...status,
      outcome: 'memory_limit',
      errorMessage: `the JavaScript heap exceeded its memory limit (the job's memory limit is ${memoryMb} MB)`,
    };
  }
  if (signal === 'SIGKILL') {
    return {
      ...base,
      ...status,
      outcome: 'killed',
      errorMessage: 'the program was killed by SIGKILL (not by the runner)',
    };
  }
  return {
    ...base,
    ...status,
    outcome: 'error',
    errorMessage:
      signal !== null
        ? `the program was killed by ${signal}`
        : `the program exited with code ${String(exitCode)}`,
  };
}

/**
 * The result once the job's cgroup was read: its peak memory, and `memory_limit` when the kernel's OOM killer
 * ended a process of the job (any memory: ArrayBuffers, threads) and the runner did not kill it first.
 */
export function withCgroupStats(
  result: ProcessResult,
  stats: CgroupStats | null,
  killReason: KillReason | null,
  memoryMb: number,
): ProcessResult {
  const judged: ProcessResult =
    stats?.oomKilled === true && killReason === null
      ? {
          ...result,
          outcome: 'memory_limit',
          value: null,
          errorMessage: `the program went over its memory limit of ${memoryMb} MB`,
        }
      : result;
  return { ...judged, peakMemoryBytes: stats?.peakMemoryBytes ?? null };
}

/** The shape of a result before anything ran. */
export function emptyResult(): SandboxResult {
  return {
    outcome: 'sandbox_error',
    stdout: '',
    stderr: '',
    stdoutTruncated: false,
    stderrTruncated: false,
    value: null,
    exitCode: null,
    signal: null,
    durationMs: 0,
    files: [],
    deletedFiles: [],
    filesTruncated: false,
  };
}

/** A job that ended before its box ran it, with `outcome` and why. */
export function earlyResult(outcome: SandboxOutcome, errorMessage: string): SandboxResult {
  return { ...emptyResult(), outcome, errorMessage };
}
