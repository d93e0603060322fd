import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';

/** Why the supervisor killed a box. */
export type KillReason = 'timeout' | 'stdout_limit' | 'stderr_limit' | 'result_limit' | 'aborted';

/** How to start and bound one sandbox process tree. */
export interface BoxProcessSpec {
  /** The launcher binary (bwrap). */
  file: string;
  args: readonly string[];
  /** Host uid/gid for the launcher; omitted means the runner's own. */
  credentials?: { uid: number; gid: number };
  timeoutMs: number;
  /** Cap on each of stdout and stderr. */
  maxOutputBytes: number;
  /** Cap on the result channel (fd 3). */
  maxResultBytes: number;
  /** How long to wait for pipes to close after a kill or exit before giving up on them. */
  settleMs: number;
  signal?: AbortSignal;
}

/** Bytes kept from one stream, and whether more arrived than was kept. */
export interface CappedBytes {
  bytes: Buffer;
  truncated: boolean;
}

/** Everything observed about one box process, before any interpretation. */
export interface BoxProcessOutcome {
  /** Set when the launcher could not be started at all. */
  spawnError: Error | null;
  /** The launcher's exit code (bwrap passes the guest's on, 128 + n for a guest killed by signal n). */
  exitCode: number | null;
  /** Set when the launcher itself died by a signal (normally our SIGKILL). */
  signal: NodeJS.Signals | null;
  stdout: CappedBytes;
  stderr: CappedBytes;
  result: CappedBytes;
  killReason: KillReason | null;
  durationMs: number;
}

class ByteCap {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  truncated = false;

  constructor(private readonly limit: number) {}

  /** Keeps what fits; returns true the first time the limit is exceeded. */
  push(chunk: Buffer): boolean {
    if (this.truncated) return false;
    const room = this.limit - this.kept;
    if (chunk.length <= room) {
      this.chunks.push(chunk);
      this.kept += chunk.length;
      return false;
    }
    if (room > 0) this.chunks.push(chunk.subarray(0, room));
    this.kept = this.limit;
    this.truncated = true;
    return true;
  }

  collect(): CappedBytes {
    return { bytes: Buffer.concat(this.chunks), truncated: this.truncated };
  }
}

/**
 * Runs the launcher as the leader of a new process group with an empty environment, reads stdout, stderr
 * and the result channel concurrently with caps, and SIGKILLs the whole group on timeout, on a cap being
 * exceeded, or on abort. Never rejects: a launcher that cannot start is reported in `spawnError`.
 *
 * Killing the group reaches bwrap and its pid-1 reaper; guest processes that called setsid() are outside
 * the group but inside bwrap's pid namespace, which the kernel empties when its pid 1 dies.
 */
export function runBoxProcess(spec: BoxProcessSpec): Promise<BoxProcessOutcome> {
  return new Promise((resolve) => {
    const started = performance.now();
    const stdout = new ByteCap(spec.maxOutputBytes);
    const stderr = new ByteCap(spec.maxOutputBytes);
    const result = new ByteCap(spec.maxResultBytes);
    let killReason: KillReason | null = null;
    let spawnError: Error | null = null;
    let settled = false;
    // After the exit only the pipes are draining: a late timer or abort must not relabel a finished job.
    let exited = false;
    const timers: { timeout?: NodeJS.Timeout; settle?: NodeJS.Timeout } = {};
    let child: ChildProcess | undefined;

    const finish = (exitCode: number | null, signal: NodeJS.Signals | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timers.timeout);
      clearTimeout(timers.settle);
      spec.signal?.removeEventListener('abort', onAbort);
      for (const stream of child?.stdio ?? []) stream?.destroy();
      resolve({
        spawnError,
        exitCode,
        signal,
        stdout: stdout.collect(),
        stderr: stderr.collect(),
        result: result.collect(),
        killReason,
        durationMs: Math.round(performance.now() - started),
      });
    };

    // Pipes normally close right after the exit; if something still holds them, stop waiting.
    const settleSoon = (exitCode: number | null, signal: NodeJS.Signals | null): void => {
      if (settled || timers.settle !== undefined) return;
      timers.settle = setTimeout(() => finish(exitCode, signal), spec.settleMs);
    };

    const killGroup = (reason: KillReason): void => {
      if (killReason === null) killReason = reason;
      const pid = child?.pid;
      if (pid === undefined) return;
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // ESRCH: the group is already gone.
        child?.kill('SIGKILL');
      }
      settleSoon(null, 'SIGKILL');
    };

    function onAbort(): void {
      if (!exited) killGroup('aborted');
    }

    try {
      child = spawn(spec.file, [...spec.args], {
        env: {},
        cwd: '/',
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
        ...(spec.credentials ?? {}),
      });
    } catch (error) {
      spawnError = error instanceof Error ? error : new Error(String(error));
      finish(null, null);
      return;
    }

    child.once('error', (error) => {
      // After a successful spawn 'error' only reports a failed kill, which the group kill already covers.
      if (child?.pid !== undefined) return;
      spawnError = error;
      finish(null, null);
    });
    child.once('exit', (code, signal) => {
      exited = true;
      settleSoon(code, signal);
    });
    child.once('close', (code, signal) => finish(code, signal));

    const watch = (index: number, cap: ByteCap, reason: KillReason): void => {
      const stream = child?.stdio[index];
      if (!(stream instanceof Readable)) return;
      stream.on('data', (chunk: Buffer) => {
        if (cap.push(chunk)) killGroup(reason);
      });
      stream.on('error', () => {
        // A reset pipe just ends the stream; the exit status tells what happened.
      });
    };
    watch(1, stdout, 'stdout_limit');
    watch(2, stderr, 'stderr_limit');
    watch(3, result, 'result_limit');

    timers.timeout = setTimeout(() => {
      if (!exited) killGroup('timeout');
    }, spec.timeoutMs);
    if (spec.signal?.aborted === true) killGroup('aborted');
    else spec.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
