import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { Readable, Writable } from 'node:stream';

/** Why the supervisor killed a box. */
export type KillReason = 'timeout' | 'stdout_limit' | 'stderr_limit' | 'result_limit' | 'aborted';

/** How to start one sandbox process tree; the job's own limits come later, with `go`. */
export interface BoxSpawnSpec {
  /** The binary started: bwrap, or (the `process` backend) the interpreter itself. */
  file: string;
  args: readonly string[];
  /** Host uid/gid it is started as (the spawn drops to them); omitted means the runner's own. */
  credentials?: { uid: number; gid: number };
  /** Its working directory; default `/`. */
  cwd?: string;
  /** Cap on the result channel (fd 3), ready marker included. */
  maxResultBytes: number;
  /** Cap on each of stdout and stderr until the job's own cap applies (start-up chatter of a broken box). */
  startOutputBytes: number;
  /** How long the box may take to report ready before it is killed. */
  startTimeoutMs: number;
  /** How long to wait for pipes to close after a kill or exit before giving up on them. */
  settleMs: number;
  /** Proof the wrapper inside runs: the first bytes on the result channel. */
  readyMarker: Buffer;
  /**
   * End the box as soon as the wrapper closed the result channel after its report, instead of waiting for
   * its process to exit. Only for a wrapper whose guest cannot outlive the report or touch the channel (the
   * QuickJS host): Node's own shutdown was a third of a trivial job's latency.
   */
  endOnReport?: boolean;
  /**
   * Data the started binary reads from fds 5, 6, ... (each a pipe written in full and closed at once), e.g. the
   * seccomp program bwrap reads with `--seccomp 5`. A fresh pipe per box: a shared descriptor would be at
   * its end after the first box read it.
   */
  inputs?: readonly Buffer[];
  /**
   * Where the runner puts the box's processes into the job's cgroups (and sets rlimits) before anything of
   * the job runs, in place of a launcher inside the box (issue 11, hole 8).
   *
   * - `held`: the spec is a bwrap command line naming `--info-fd` and `--block-fd` at `holdFds()`. bwrap's
   *   first child reports its pid and then waits on the block fd, before its seccomp filter and before it
   *   starts the interpreter; `join` gets that child's pid, and the child goes on only when `join` resolved.
   *   (bwrap's own outer process stays where it is: it only waits for the box, and is in the box's process
   *   group; each cgroup migration waits for an RCU grace period, so fewer is faster.) Everything the box starts later inherits what `join` set. No race, and the whole
   *   interpreter is charged to the job's memory cgroup.
   * - `ready`: (no bwrap: the `process` backend) `join` gets the interpreter's pid once it reported ready,
   *   before `go`, so before any guest code; its start-up memory stays charged where the runner is.
   *
   * A `join` that rejects kills the box (it is then not ready), with the reason on its stderr.
   */
  attach?: { when: 'held' | 'ready'; join(pids: readonly number[]): Promise<void> };
}

/** The descriptors of a `held` box, after its inputs: bwrap writes its info to the first, blocks on the second. */
export function holdFds(inputCount: number): { infoFd: number; blockFd: number } {
  return { infoFd: 5 + inputCount, blockFd: 6 + inputCount };
}

/** bwrap's `--info-fd` JSON is complete once its closing brace arrived; it names the first child. */
const CHILD_PID = /"child-pid":\s*(\d+)[\s\S]*\n\}/;
/** Cap on bwrap's info JSON (a few hundred bytes). */
const MAX_INFO_BYTES = 64 * 1024;

/** What `go` hands a ready box: the job's line on the go channel (fd 4) and its limits. */
export interface BoxGo {
  line: string;
  timeoutMs: number;
  /** Cap on each of stdout and stderr. */
  maxOutputBytes: number;
  signal?: AbortSignal;
}

/** Bytes kept from one stream, and whether more arrived than was kept. */
export interface CappedBytes {
  bytes: Buffer;
  truncated: boolean;
}

/** Everything observed about one box process, before any interpretation. */
export interface BoxProcessOutcome {
  /** Set when the binary could not be started at all. */
  spawnError: Error | null;
  /** Its exit code (bwrap passes the guest's on, 128 + n for a guest killed by signal n). */
  exitCode: number | null;
  /** Set when it died by a signal (normally our SIGKILL). */
  signal: NodeJS.Signals | null;
  stdout: CappedBytes;
  stderr: CappedBytes;
  result: CappedBytes;
  killReason: KillReason | null;
  /** The box was ended by the runner right after the wrapper closed the result channel (`endOnReport`). */
  endedByReport: boolean;
  /** Whole milliseconds from `go` (or from the spawn, when the box never got that far) to the end. */
  durationMs: number;
}

class ByteCap {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  truncated = false;

  constructor(private limit: number) {}

  /** Sets a new cap; true when what is already kept exceeds it (the caller kills the box). */
  setLimit(limit: number): boolean {
    this.limit = limit;
    if (this.truncated || this.kept <= limit) return false;
    const all = Buffer.concat(this.chunks).subarray(0, limit);
    this.chunks.length = 0;
    this.chunks.push(all);
    this.kept = limit;
    this.truncated = true;
    return true;
  }

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

  startsWith(prefix: Buffer): boolean {
    if (this.kept < prefix.length) return false;
    return Buffer.concat(this.chunks).subarray(0, prefix.length).equals(prefix);
  }

  collect(): CappedBytes {
    return { bytes: Buffer.concat(this.chunks), truncated: this.truncated };
  }
}

/**
 * One sandbox process tree in two phases. `startBox` spawns bwrap (or the interpreter) as the leader of a
 * new process group with an empty environment and reads stdout, stderr and the result channel (fd 3) with
 * caps from the start; the box is *ready* once the wrapper inside wrote its marker on fd 3 (interpreter up,
 * waiting). `go` then writes the job's line on fd 4 — the wrapper runs the job only now — and starts the
 * job's wall clock.
 * The box SIGKILLs its whole group on timeout, on a cap being exceeded, on abort, or when discarded.
 *
 * Killing the group reaches bwrap and its pid-1 reaper; guest processes that called setsid() are outside
 * the group but inside bwrap's pid namespace, which the kernel empties when its pid 1 dies (and the job's
 * cgroup sweep catches anything else).
 */
export interface BoxProcess {
  /** True once the wrapper reported ready; false when the box died, failed to spawn or took too long. */
  readonly ready: Promise<boolean>;
  /** Whether the box is still ready for a job (not exited, not discarded, `go` not called yet). */
  isIdle(): boolean;
  /** Runs the job. Call once, after `ready` resolved; never rejects. */
  go(job: BoxGo): Promise<BoxProcessOutcome>;
  /** Kills an unused (or failed) box; resolves once it is gone. */
  discard(): Promise<void>;
}

export function startBox(spec: BoxSpawnSpec): BoxProcess {
  let started = performance.now();
  const stdout = new ByteCap(spec.startOutputBytes);
  const stderr = new ByteCap(spec.startOutputBytes);
  const result = new ByteCap(spec.maxResultBytes);
  let killReason: KillReason | null = null;
  let endedByReport = false;
  let spawnError: Error | null = null;
  let phase: 'starting' | 'ready' | 'running' | 'done' = 'starting';
  let discarded = false;
  // After the exit only the pipes are draining: a late timer or abort must not relabel a finished job.
  let exited = false;
  let exitStatus: { code: number | null; signal: NodeJS.Signals | null } = { code: null, signal: null };
  const timers: { start?: NodeJS.Timeout; timeout?: NodeJS.Timeout; settle?: NodeJS.Timeout } = {};
  let child: ChildProcess | undefined;
  let abortSignal: AbortSignal | undefined;

  let resolveReady: (ready: boolean) => void = () => undefined;
  const ready = new Promise<boolean>((resolve) => {
    resolveReady = resolve;
  });
  let resolveDone: (outcome: BoxProcessOutcome) => void = () => undefined;
  const done = new Promise<BoxProcessOutcome>((resolve) => {
    resolveDone = resolve;
  });

  const finish = (): void => {
    if (phase === 'done') return;
    phase = 'done';
    clearTimeout(timers.start);
    clearTimeout(timers.timeout);
    clearTimeout(timers.settle);
    abortSignal?.removeEventListener('abort', onAbort);
    for (const stream of child?.stdio ?? []) stream?.destroy();
    resolveReady(false);
    resolveDone({
      spawnError,
      exitCode: exitStatus.code,
      signal: exitStatus.signal,
      stdout: stdout.collect(),
      stderr: stderr.collect(),
      result: result.collect(),
      killReason,
      endedByReport,
      durationMs: Math.round(performance.now() - started),
    });
  };

  // Pipes normally close right after the exit; if something still holds them, stop waiting.
  const settleSoon = (): void => {
    if (phase === 'done' || timers.settle !== undefined) return;
    timers.settle = setTimeout(finish, spec.settleMs);
  };

  const killGroup = (reason: KillReason | null): void => {
    if (killReason === null && reason !== null) killReason = reason;
    const pid = child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // ESRCH: the group is already gone.
      child?.kill('SIGKILL');
    }
    if (!exited) exitStatus = { code: null, signal: 'SIGKILL' };
    settleSoon();
  };

  /** Runs the spec's `join`, then `release`; a failure kills the box with the reason on its stderr. */
  async function attachThen(pids: readonly number[], release: () => void): Promise<void> {
    try {
      if (spec.attach === undefined) return;
      await spec.attach.join(pids);
    } catch (error) {
      stderr.push(
        Buffer.from(
          `\ntandem: could not attach the box: ${error instanceof Error ? error.message : String(error)}\n`,
        ),
      );
      killGroup(null);
      return;
    }
    if (phase !== 'done' && !discarded) release();
  }

  function onAbort(): void {
    if (!exited) killGroup('aborted');
  }

  try {
    const stdio: StdioOptions = [
      'ignore',
      'pipe',
      'pipe',
      'pipe',
      'pipe',
      ...(spec.inputs ?? []).map(() => 'pipe' as const),
      ...(spec.attach?.when === 'held' ? (['pipe', 'pipe'] as const) : []),
    ];
    child = spawn(spec.file, [...spec.args], {
      env: {},
      cwd: spec.cwd ?? '/',
      detached: true,
      stdio,
      ...(spec.credentials ?? {}),
    });
  } catch (error) {
    spawnError = error instanceof Error ? error : new Error(String(error));
    finish();
  }

  if (child !== undefined) {
    child.once('error', (error) => {
      // After a successful spawn 'error' only reports a failed kill, which the group kill already covers.
      if (child?.pid !== undefined) return;
      spawnError = error;
      finish();
    });
    child.once('exit', (code, signal) => {
      exited = true;
      exitStatus = { code, signal };
      resolveReady(false);
      settleSoon();
    });
    child.once('close', (code, signal) => {
      exitStatus = exited ? exitStatus : { code, signal };
      finish();
    });

    const watch = (index: number, cap: ByteCap, reason: KillReason): void => {
      const stream = child?.stdio[index];
      if (!(stream instanceof Readable)) return;
      stream.on('data', (chunk: Buffer) => {
        if (cap.push(chunk)) killGroup(phase === 'running' ? reason : null);
        if (phase === 'starting' && index === 3 && result.startsWith(spec.readyMarker)) {
          phase = 'ready';
          clearTimeout(timers.start);
          if (spec.attach?.when === 'ready') {
            const pid = child?.pid;
            // Not idle until joined: the pool hands the box out only once `ready` resolved.
            void attachThen(pid === undefined ? [] : [pid], () => resolveReady(true));
          } else {
            resolveReady(true);
          }
        }
      });
      stream.on('error', () => {
        // A reset pipe just ends the stream; the exit status tells what happened.
      });
      if (index === 3 && spec.endOnReport === true) {
        stream.on('end', () => {
          if (phase !== 'running' || exited || killReason !== null) return;
          // Only after a report: a channel closed by a dying wrapper is left to the exit status.
          if (result.collect().bytes.length <= spec.readyMarker.length) return;
          endedByReport = true;
          killGroup(null);
        });
      }
    };
    watch(1, stdout, 'stdout_limit');
    watch(2, stderr, 'stderr_limit');
    watch(3, result, 'result_limit');
    for (const [offset, data] of (spec.inputs ?? []).entries()) {
      const pipe = child.stdio[5 + offset];
      if (!(pipe instanceof Writable)) continue;
      pipe.on('error', () => {
        // The box died before reading it: the exit status tells what happened.
      });
      pipe.end(data);
    }
    if (spec.attach?.when === 'held') {
      const { infoFd, blockFd } = holdFds(spec.inputs?.length ?? 0);
      const infoStream = child.stdio[infoFd];
      const blockStream = child.stdio[blockFd];
      if (infoStream instanceof Readable && blockStream instanceof Writable) {
        blockStream.on('error', () => {
          // bwrap died before it read the release: the exit status tells what happened.
        });
        infoStream.on('error', () => undefined);
        let info = '';
        let attached = false;
        infoStream.on('data', (chunk: Buffer) => {
          if (attached || info.length > MAX_INFO_BYTES) return;
          info += chunk.toString('utf8');
          const match = CHILD_PID.exec(info);
          const bwrapPid = child?.pid;
          if (match === null || bwrapPid === undefined) return;
          attached = true;
          void attachThen([Number(match[1])], () => blockStream.end('x'));
        });
      }
    }
    const goChannel = child.stdio[4];
    if (goChannel instanceof Writable) {
      goChannel.on('error', () => {
        // The box died before reading its job: the exit status tells what happened.
      });
    }
    timers.start = setTimeout(() => {
      if (phase === 'starting') killGroup(null);
    }, spec.startTimeoutMs);
  }

  return {
    ready,
    isIdle: () => phase === 'ready' && !exited && !discarded,
    async go(job) {
      const isReady = await ready;
      if (phase === 'done' || phase === 'running' || !isReady || discarded) return done;
      phase = 'running';
      started = performance.now();
      if (stdout.setLimit(job.maxOutputBytes)) killGroup('stdout_limit');
      if (stderr.setLimit(job.maxOutputBytes)) killGroup('stderr_limit');
      timers.timeout = setTimeout(() => {
        if (!exited) killGroup('timeout');
      }, job.timeoutMs);
      abortSignal = job.signal;
      if (abortSignal?.aborted === true) killGroup('aborted');
      else abortSignal?.addEventListener('abort', onAbort, { once: true });
      const goChannel = child?.stdio[4];
      if (goChannel instanceof Writable) goChannel.end(job.line);
      return done;
    },
    async discard() {
      discarded = true;
      if (phase !== 'done') killGroup(null);
      await done;
    },
  };
}
