import { bindArgs, describeBoxRoot, linkBoxRoot, type BoxBind, type BoxRoot } from './box-root.js';
import { detectCgroups, processExists, type CgroupSupport, type JobCgroup } from './cgroups.js';
import { execFile } from 'node:child_process';
import { constants as fsConstants, writeFileSync } from 'node:fs';
import { access, chmod, chown, cp, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { constants as osConstants, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import {
  holdFds,
  startBox,
  type BoxProcess,
  type BoxProcessOutcome,
  type CappedBytes,
  type KillReason,
} from './box-process.js';
import { parseGuestReport } from './guest-report.js';
import { BOX_DIR, BOX_FILES, PYTHON_WRAPPER, READY_MARKER, WORK_DIR } from './guest-wrappers.js';
import { createWarmPool, type PoolableBox, type WarmPool } from './pool.js';
import { QUICKJS_HOST, QUICKJS_NODE_FLAGS, quickjsPackageDirs } from './quickjs-host.js';
import { SECCOMP_ARCHES, execDenyFilter, seccompFilter } from './seccomp.js';
import type {
  SandboxBackend,
  SandboxCheck,
  SandboxFile,
  SandboxJob,
  SandboxLanguage,
  SandboxOutcome,
  SandboxResult,
  SandboxRunOptions,
} from './types.js';
import { assertValidFiles, collectWorkFiles, writeInputFiles, type CollectedFiles } from './work-files.js';

const execFileAsync = promisify(execFile);

/** Settings of the bubblewrap backend; every field has a default that works on Debian 12. */
export interface BwrapBackendOptions {
  /** Default `/usr/bin/bwrap`. */
  bwrapPath?: string;
  /**
   * Default `/usr/bin/python3`. The box holds this file (at this path), its loader and libraries and its
   * standard library, and nothing else of the host's system (`box-root.ts`).
   */
  pythonPath?: string;
  /** Default `/usr/bin/node`, bound the same way. Not `process.execPath`, which may be anywhere. */
  nodePath?: string;
  /**
   * Default `/usr/bin/prlimit` (util-linux). Run by the runner on the host, never in the box: sets a
   * JavaScript box's rlimits on bwrap's held first child (Python's wrapper sets its own).
   */
  prlimitPath?: string;
  /**
   * Where per-job host directories (code, input, wrapper, and the working directory) are made. Default
   * `os.tmpdir()`. When the runner is root it must be searchable (o+x) by the sandbox user.
   */
  scratchRoot?: string;
  /**
   * Host uid/gid bubblewrap (and so the guest) runs as when the runner is root. Default 65534:65534
   * (nobody). Ignored when the runner is not root: the guest then runs as the runner's uid.
   */
  sandboxUser?: { uid: number; gid: number };
  /**
   * How the job's working directory (`/work` in the box, collected afterwards) is stored on the host.
   * `tmpfs` (default when the runner is root): a tmpfs the runner mounts per job at
   * `<scratchRoot>/<job>/work`, capped at `workBytes` and `workInodes` by the kernel, unmounted after
   * collection. `directory` (default otherwise; needs no privilege): a plain directory on the scratch
   * root's file system; only RLIMIT_FSIZE (`workBytes` per file) bounds it, not the total or the count.
   */
  workStorage?: 'tmpfs' | 'directory';
  /** Size of the working directory (the job's files included) in bytes. Default 64 MiB. */
  workBytes?: number;
  /** Files and directories the `tmpfs` working directory can hold (tmpfs `nr_inodes`). Default 32768. */
  workInodes?: number;
  /** Size of the box's own `/tmp` tmpfs in bytes; it is not collected. Default 16 MiB. */
  tmpBytes?: number;
  /**
   * Directory entries the collector reads after a job, at most (names are cheap; files are opened only
   * when they may be sent back). More than the tmpfs can hold, so there the cut is always by path; a plain
   * directory with more entries is cut at what was read. Default 100000.
   */
  maxCollectEntries?: number;
  /**
   * Per-job cgroups (memory and pids) from `detectCgroups()` (default, when the runner is root), or `off`.
   * Without them the runner falls back to rlimits and says which limits are missing (`check().warnings`).
   */
  cgroups?: CgroupSupport | 'off';
  /** Memory limit of a job that names none, in MB (with cgroups). Default 1024. */
  defaultMemoryMb?: number;
  /** Default `/usr/bin/mount`; the runner mounts the `tmpfs` working directory with it, on the host. */
  mountPath?: string;
  /** Default `/usr/bin/umount`. */
  umountPath?: string;
  /** Cap on the JSON result in bytes; exceeding it ends the job with `output_limit`. Default 4 MiB. */
  maxResultBytes?: number;
  /**
   * RLIMIT_NPROC inside the box: processes and threads of the guest. Each job has its own user
   * namespace and the limit was measured to count per job on this kernel (6.x), not across jobs. Node needs
   * about a dozen threads. Default 64. The pids cgroup replaces this later.
   */
  maxProcesses?: number;
  /**
   * Warm boxes kept per language, started ahead of demand (each serves one job, then is destroyed).
   * Default 0: every job starts its own box.
   */
  poolSize?: number;
  /**
   * RLIMIT_CPU of every process in the box, in seconds: a backstop behind the supervisor's wall clock
   * (which starts only at the job, while the limit counts from the box's start). Default 610.
   */
  cpuSeconds?: number;
  /** How long a box may take to start its interpreter before it is killed. Default 30 s. */
  startTimeoutMs?: number;
  /**
   * The syscall filter (`seccomp.ts`) every box's guest runs under; `off` only for tests that compare.
   * Default on (x86_64 and arm64; other architectures make the backend throw at creation).
   */
  seccomp?: 'on' | 'off';
  /**
   * `bwrap` (default): every box is a bubblewrap sandbox. `none`: the explicitly chosen weaker backend
   * (named `process`) for hosts without bubblewrap: the same wrappers, limits, cgroups, uid drop and empty
   * environment, but no namespaces and no syscall filter, so the guest can read what uid 65534 may read,
   * reach the network and see host processes. `check()` lists all of that as warnings.
   */
  isolation?: 'bwrap' | 'none';
}

const DEFAULTS = {
  bwrapPath: '/usr/bin/bwrap',
  pythonPath: '/usr/bin/python3',
  nodePath: '/usr/bin/node',
  prlimitPath: '/usr/bin/prlimit',
  workBytes: 64 * 1024 * 1024,
  workInodes: 32_768,
  tmpBytes: 16 * 1024 * 1024,
  maxCollectEntries: 100_000,
  mountPath: '/usr/bin/mount',
  umountPath: '/usr/bin/umount',
  maxResultBytes: 4 * 1024 * 1024,
  maxProcesses: 64,
  cpuSeconds: 610,
  startTimeoutMs: 30_000,
  sandboxUser: { uid: 65534, gid: 65534 },
} as const;

/** Caps on collecting the working directory when the job does not set them. */
const FILE_DEFAULTS = {
  maxFiles: 100,
  maxFileBytes: 1024 * 1024,
  maxTotalFileBytes: 8 * 1024 * 1024,
} as const;
/**
 * Bounds on the collector's own work, whatever the guest left: levels walked and wall time (entries read
 * is `maxCollectEntries`). Beyond any of them the result is `filesTruncated`.
 */
const COLLECT_BOUNDS = { maxDepth: 64, budgetMs: 5_000 } as const;
/** Budget for one mount, umount, chmod or rm the runner runs itself. */
const TOOL_TIMEOUT_MS = 30_000;
/** GNU coreutils, used to remove a `directory` working dir however deep or unreadable the guest made it. */
const RM_PATH = '/usr/bin/rm';
const CHMOD_PATH = '/usr/bin/chmod';
/** How long to wait for the box's pipes to close after it exited or was killed. */
const SETTLE_MS = 2_000;
/** Names of boxes' host directories: the prefix, then the runner's pid (for the orphan sweep). */
const BOX_DIR_PREFIX = 'tandem-sandbox-';
/** Where the QuickJS packages are bound inside a JavaScript box. */
const QUICKJS_BOX_ROOT = '/qjs';
/**
 * Memory of a JavaScript box that is the Node host's own (V8, its threads, the engine's WebAssembly code),
 * not the program's: the engine's heap cap is the job's memory limit minus this, so a program over its
 * limit is stopped by the engine (a clean `memory_limit` report) before the cgroup's OOM kill.
 */
const JAVASCRIPT_HOST_BYTES = 56 * 1024 * 1024;
/** The least heap a JavaScript program gets, however small its limit (the cgroup still bounds the box). */
const JAVASCRIPT_MIN_HEAP_BYTES = 8 * 1024 * 1024;
/** The descriptor bwrap reads the seccomp program from (the first of the box's extra inputs). */
const SECCOMP_FD = 5;
/** Budget for the probe in `check()`. */
const CHECK_TIMEOUT_MS = 10_000;
/**
 * The bwrap argv for one box. Namespaces: all (user, pid, net, ipc, uts, cgroup, mount); no network
 * device but loopback. Filesystem: an empty read-only root holding only the language's interpreter, its
 * loader and libraries (and Python's standard library) read-only (`box-root.ts`), fresh /proc and /dev, the
 * job's box dir read-only at /box, the job's own working directory read-write at /work (the cwd), and a
 * size-capped tmpfs at /tmp. Environment: cleared, then four fixed variables.
 */
function buildBwrapArgs(params: {
  /** The host files the box holds (the interpreter and what it loads). */
  root: readonly BoxBind[];
  boxDir: string;
  workDir: string;
  tmpBytes: number;
  /** The fd bwrap reads the seccomp program from, or null for none. */
  seccompFd: number | null;
  /** Extra read-only binds (host path → box path), e.g. the JavaScript engine's packages. */
  binds?: readonly BoxBind[];
  /** bwrap reports its first child's pid here and holds it until the runner attached the box. */
  hold?: { infoFd: number; blockFd: number };
  command: readonly string[];
}): string[] {
  const args = [
    '--unshare-all',
    // Explicit so --disable-userns is allowed; bwrap implies it anyway when not setuid.
    '--unshare-user',
    // The guest cannot create nested user namespaces (and with them, new mount or net namespaces).
    '--disable-userns',
    '--die-with-parent',
    // setsid() for the guest: no controlling terminal, so no TIOCSTI into the runner's terminal.
    '--new-session',
    '--cap-drop',
    'ALL',
    '--hostname',
    'sandbox',
    ...(params.hold === undefined
      ? []
      : ['--info-fd', String(params.hold.infoFd), '--block-fd', String(params.hold.blockFd)]),
    ...bindArgs(params.root),
  ];
  args.push(
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--ro-bind',
    params.boxDir,
    BOX_DIR,
    ...(params.binds ?? []).flatMap((bind) => ['--ro-bind', bind.hostPath, bind.boxPath]),
    '--bind',
    params.workDir,
    WORK_DIR,
    '--size',
    String(params.tmpBytes),
    '--tmpfs',
    '/tmp',
    // bwrap's root and /dev are tmpfs without a size: read-only, or a guest could fill the host's memory.
    '--remount-ro',
    '/dev',
    '--remount-ro',
    '/',
    '--chdir',
    WORK_DIR,
    ...(params.seccompFd === null ? [] : ['--seccomp', String(params.seccompFd)]),
    '--clearenv',
    // Nothing to find there but the interpreter: kept because programs read it.
    '--setenv',
    'PATH',
    '/usr/bin:/bin',
    // Not the working directory: caches a library keeps under $HOME would be saved back as task files.
    '--setenv',
    'HOME',
    '/tmp',
    '--setenv',
    'TMPDIR',
    '/tmp',
    '--setenv',
    'LANG',
    'C.UTF-8',
    '--',
    ...params.command,
  );
  return args;
}

/** Drops a trailing partial UTF-8 sequence left by a byte cap, so the text does not end in U+FFFD. */
function decodeCapped(captured: CappedBytes): string {
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
type ProcessResult = Omit<SandboxResult, keyof CollectedFiles>;

/** Turns what was observed about a box into the job's result. Pure. */
function interpret(
  job: SandboxJob,
  observed: BoxProcessOutcome,
  bwrapPath: string,
  maxResultBytes: number,
  /** The memory limit the job ran under, named in memory_limit messages. */
  memoryMb: number,
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

function assertValidJob(job: SandboxJob): { inputJson: string; files: SandboxFile[] } {
  if (job.language !== 'javascript' && job.language !== 'python') {
    throw new TypeError(`unsupported sandbox language: ${String(job.language)}`);
  }
  if (typeof job.code !== 'string') throw new TypeError('sandbox job code must be a string');
  const { timeoutMs, maxOutputBytes, memoryMb } = job.limits;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`invalid timeoutMs: ${timeoutMs}`);
  if (!Number.isInteger(maxOutputBytes) || maxOutputBytes <= 0) {
    throw new RangeError(`invalid maxOutputBytes: ${maxOutputBytes}`);
  }
  if (memoryMb !== undefined && (!Number.isInteger(memoryMb) || memoryMb <= 0)) {
    throw new RangeError(`invalid memoryMb: ${memoryMb}`);
  }
  for (const name of ['maxFiles', 'maxFileBytes', 'maxTotalFileBytes'] as const) {
    const value = job.limits[name];
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
      throw new RangeError(`invalid ${name}: ${value}`);
    }
  }
  // Throws for BigInt or cycles; undefined for a function or symbol: either way the input is not JSON.
  const inputJson: string | undefined = JSON.stringify(job.input ?? null);
  if (inputJson === undefined) throw new TypeError('sandbox job input is not JSON');
  return { inputJson, files: assertValidFiles(job.files) };
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs a host tool the runner needs (mount, umount, rm, prlimit) with an empty environment, as the runner or
 * as `credentials`; throws on failure.
 */
async function runTool(
  file: string,
  args: readonly string[],
  credentials?: { uid: number; gid: number },
): Promise<void> {
  try {
    await execFileAsync(file, [...args], {
      env: {},
      cwd: '/',
      timeout: TOOL_TIMEOUT_MS,
      maxBuffer: 64 * 1024,
      ...(credentials ?? {}),
    });
  } catch (error) {
    const stderr =
      typeof error === 'object' && error !== null && 'stderr' in error && typeof error.stderr === 'string'
        ? error.stderr.trim()
        : '';
    throw new Error(`${file} ${args.join(' ')} failed: ${stderr === '' ? describeError(error) : stderr}`, {
      cause: error,
    });
  }
}

/** One box's host directories: `jobDir` holds `box` (read-only /box) and `work` (read-write /work). */
interface JobDirs {
  jobDir: string;
  boxDir: string;
  workDir: string;
}

/** A sandbox started for one job (maybe ahead of it): its directories, cgroup and process tree. */
interface Box extends PoolableBox {
  readonly language: SandboxLanguage;
  readonly dirs: JobDirs | null;
  readonly cgroup: JobCgroup | null;
  readonly process: BoxProcess | null;
  /** Why the box could not be prepared (directories, cgroup), when it could not. */
  readonly setupError: string | null;
}

/**
 * Creates the bubblewrap backend. Each job runs in a fresh bwrap box: own user, pid, net, mount, ipc and
 * uts namespaces, an empty read-only root holding only its interpreter and what that loads, its own working
 * directory and a size-capped /tmp to write to, an empty environment, host uid 65534 in per-job memory and
 * pids cgroups when the runner is root, rlimits as backstops, and a wall-clock SIGKILL. After the box is
 * gone the runner collects what the guest wrote to its working directory.
 *
 * Boxes are started before their job (a warm pool of `poolSize` per language, or on demand): the interpreter
 * starts, then waits on the go channel; the job's code, input and files are written into the box's
 * directories when the job arrives, its memory limit is set on the box's cgroup, and its clock starts at go.
 */
export function createBwrapBackend(options: BwrapBackendOptions = {}): SandboxBackend {
  const bwrapPath = options.bwrapPath ?? DEFAULTS.bwrapPath;
  const pythonPath = options.pythonPath ?? DEFAULTS.pythonPath;
  const nodePath = options.nodePath ?? DEFAULTS.nodePath;
  const prlimitPath = options.prlimitPath ?? DEFAULTS.prlimitPath;
  const mountPath = options.mountPath ?? DEFAULTS.mountPath;
  const umountPath = options.umountPath ?? DEFAULTS.umountPath;
  const scratchRoot = options.scratchRoot ?? tmpdir();
  const workBytes = options.workBytes ?? DEFAULTS.workBytes;
  const workInodes = options.workInodes ?? DEFAULTS.workInodes;
  const tmpBytes = options.tmpBytes ?? DEFAULTS.tmpBytes;
  const maxCollectEntries = options.maxCollectEntries ?? DEFAULTS.maxCollectEntries;
  const maxResultBytes = options.maxResultBytes ?? DEFAULTS.maxResultBytes;
  const maxProcesses = options.maxProcesses ?? DEFAULTS.maxProcesses;
  const defaultMemoryMb = options.defaultMemoryMb ?? 1024;
  const cpuSeconds = options.cpuSeconds ?? DEFAULTS.cpuSeconds;
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULTS.startTimeoutMs;
  const poolSize = options.poolSize ?? 0;
  const isolated = options.isolation !== 'none';
  const seccomp = options.seccomp === 'off' || !isolated ? null : seccompFilter();
  let cgroupSupport: Promise<CgroupSupport> | undefined;
  const getCgroups = (): Promise<CgroupSupport> =>
    (cgroupSupport ??=
      options.cgroups === 'off' || process.getuid?.() !== 0
        ? Promise.resolve(noCgroups(options.cgroups === 'off' ? 'turned off' : 'the runner is not root'))
        : options.cgroups !== undefined
          ? Promise.resolve(options.cgroups)
          : detectCgroups());
  let boxCounter = 0;
  // Started by root, bwrap would run the guest as host root (its --uid only maps inside the namespace):
  // bwrap itself must be spawned as the unprivileged user.
  const credentials = process.getuid?.() === 0 ? (options.sandboxUser ?? DEFAULTS.sandboxUser) : undefined;
  // Mounting needs root; without it the working directory is a plain directory.
  const workStorage = options.workStorage ?? (credentials === undefined ? 'directory' : 'tmpfs');
  // Backstops of every box: processes (where no pids cgroup binds), no core files, file size, CPU time (the
  // wall clock is the supervisor's; this catches a runner that stopped watching). A plain working directory
  // has no size of its own: no single file may outgrow the cap. On tmpfs the mounts' sizes bind first; the
  // file-size limit only backs them up.
  const fileBytes = workStorage === 'directory' ? workBytes : Math.max(workBytes, tmpBytes) + 1024 * 1024;

  let boxRoot: Promise<BoxRoot> | undefined;
  const getBoxRoot = (): Promise<BoxRoot> => (boxRoot ??= describeBoxRoot({ pythonPath, nodePath }));
  /**
   * Per language, the binds that make a box's file view: one read-only tree of hard links where the host
   * allows it (`linkBoxRoot`; made once per backend in the system's temporary directory), else one bind per
   * file. The same files either way.
   */
  const linkedRoots: string[] = [];
  let rootBinds: Promise<BoxRoot> | undefined;
  const getRootBinds = (): Promise<BoxRoot> =>
    (rootBinds ??= (async () => {
      const root = await getBoxRoot();
      const pick = async (language: SandboxLanguage): Promise<readonly BoxBind[]> => {
        const dir = await mkdtemp(path.join(tmpdir(), `tandem-root-${process.pid}-`));
        await chmod(dir, 0o755);
        linkedRoots.push(dir);
        const mountPoints = [
          '/proc',
          '/dev',
          '/tmp',
          BOX_DIR,
          WORK_DIR,
          ...(language === 'javascript' ? [QUICKJS_BOX_ROOT] : []),
        ];
        if (await linkBoxRoot(root[language], dir, mountPoints)) return [{ hostPath: dir, boxPath: '/' }];
        await rm(dir, { recursive: true, force: true });
        return root[language];
      };
      return { python: await pick('python'), javascript: await pick('javascript') };
    })());
  // Python installs it on itself before any guest code: no program can be started from its box. Not on an
  // architecture without known syscall numbers, where only the weaker `process` backend can run at all.
  const execFilter = seccomp !== null || isKnownArch(process.arch) ? execDenyFilter() : null;

  const readyMarker = Buffer.from(READY_MARKER, 'utf8');

  /**
   * Once per backend, before its first box: removes what a runner killed hard (SIGKILL, a crash) left
   * behind — boxes' tmpfs mounts and directories under the scratch root, and job cgroups — for every
   * runner pid that no longer exists. The names carry the runner's pid for this.
   */
  let orphanSweep: Promise<void> | undefined;
  const sweepOrphansOnce = (): Promise<void> =>
    (orphanSweep ??= (async () => {
      await (await getCgroups()).sweepOrphans().catch(() => 0);
      let entries: string[] = [];
      try {
        entries = await readdir(scratchRoot);
      } catch {
        return;
      }
      const stale = entries.filter((name) => {
        const match = /^tandem-sandbox-(\d+)-/.exec(name);
        return match !== null && !processExists(Number(match[1]));
      });
      for (const name of await readdir(tmpdir()).catch(() => [])) {
        const match = /^tandem-(?:qjs|root)-(\d+)-/.exec(name);
        if (match !== null && !processExists(Number(match[1]))) {
          await rm(path.join(tmpdir(), name), { recursive: true, force: true }).catch(() => undefined);
        }
      }
      for (const name of stale) {
        const jobDir = path.join(scratchRoot, name);
        cleaner.schedule(
          { jobDir, boxDir: path.join(jobDir, 'box'), workDir: path.join(jobDir, 'work') },
          null,
        );
      }
    })());

  /**
   * The QuickJS packages, copied once per backend into a directory of its own in the system's temporary
   * directory (`<root>/node_modules/...`, 1.6 MB) and bound read-only at /qjs in JavaScript boxes (or used in
   * place by the process backend). Copied, not bound from where they are installed: the sandbox user must
   * be able to reach them, and a checkout may sit below a directory only its owner can enter.
   */
  let quickjsRoot: Promise<string> | undefined;
  const getQuickjsRoot = (): Promise<string> =>
    (quickjsRoot ??= (async () => {
      const root = await mkdtemp(path.join(tmpdir(), `tandem-qjs-${process.pid}-`));
      for (const item of await quickjsPackageDirs()) {
        const target = path.join(root, path.relative(QUICKJS_BOX_ROOT, item.boxPath));
        await cp(item.hostPath, target, { recursive: true, dereference: true });
      }
      await runTool(CHMOD_PATH, ['-R', 'a+rX,go-w', '--', root]);
      return root;
    })());
  const cleaner = createCleaner();

  /**
   * Makes a box's directories: `box` (wrapper now; code and input when the job arrives) and an empty `work`
   * that only the sandbox user can enter. The tmpfs on `work` (root runner) is mounted by `prepareBox`.
   */
  async function makeBoxDirs(
    prefix: string,
    boxFiles: ReadonlyArray<readonly [string, string | Buffer]>,
  ): Promise<JobDirs> {
    const jobDir = await mkdtemp(path.join(scratchRoot, prefix));
    const dirs = { jobDir, boxDir: path.join(jobDir, 'box'), workDir: path.join(jobDir, 'work') };
    await mkdir(dirs.boxDir, { mode: 0o700 });
    for (const [name, content] of boxFiles) {
      await writeFile(path.join(dirs.boxDir, name), content, { mode: 0o444 });
    }
    await mkdir(dirs.workDir, { mode: 0o700 });
    if (credentials !== undefined) {
      // bwrap runs as the sandbox user and must traverse the job dir to bind both halves.
      await chown(dirs.boxDir, credentials.uid, credentials.gid);
      await chown(dirs.workDir, credentials.uid, credentials.gid);
      await chown(dirs.jobDir, credentials.uid, credentials.gid);
      await chmod(dirs.boxDir, 0o500);
    }
    await chmod(dirs.jobDir, 0o500);
    return dirs;
  }

  /**
   * Removes a box's dirs, however deep a tree the guest left. A tmpfs working directory was detached
   * before (the cleaner's batched lazy `umount`), so only its empty mount point is left to remove.
   */
  async function removeBoxDirs(dirs: JobDirs): Promise<void> {
    if (workStorage === 'directory') {
      // rm -rf (fts, openat) handles any depth; as non-root the owner must first undo a guest's chmod 000.
      await chmod(dirs.jobDir, 0o700).catch(() => undefined);
      if (credentials === undefined) {
        await runTool(CHMOD_PATH, ['-R', 'u+rwx', '--', dirs.workDir]).catch(() => undefined);
      }
      await runTool(RM_PATH, ['-rf', '--one-file-system', '--', dirs.workDir]);
    }
    // Made read-only (0500), which stops a non-root owner from emptying them.
    await chmod(dirs.jobDir, 0o700).catch(() => undefined);
    await chmod(dirs.boxDir, 0o700).catch(() => undefined);
    await rm(dirs.jobDir, { recursive: true, force: true, maxRetries: 3 });
  }

  /**
   * Tears finished boxes down off the job's path: first their cgroups (killing anything left, then removing
   * them), then one `umount` process detaches every tmpfs queued since the last round (one process per job
   * was a large part of a trivial job's CPU), then the directories go.
   */
  function createCleaner(): {
    schedule(dirs: JobDirs | null, cgroup: JobCgroup | null): void;
    drain(): Promise<void>;
  } {
    const queue: Array<{ dirs: JobDirs | null; cgroup: JobCgroup | null }> = [];
    let running: Promise<void> | null = null;
    const round = async (): Promise<void> => {
      while (queue.length > 0) {
        const batch = queue.splice(0, 64);
        await Promise.all(batch.map((item) => item.cgroup?.destroy()));
        const dirs = batch.flatMap((item) => (item.dirs === null ? [] : [item.dirs]));
        if (workStorage === 'tmpfs' && dirs.length > 0) {
          // Exit status ignored: a box that failed before its mount has nothing to detach.
          await runTool(umountPath, ['-l', '-n', '--', ...dirs.map((item) => item.workDir)]).catch(
            () => undefined,
          );
        }
        await Promise.all(dirs.map((item) => removeBoxDirs(item).catch(() => undefined)));
      }
      running = null;
    };
    return {
      schedule(dirs, cgroup) {
        queue.push({ dirs, cgroup });
        running ??= round();
      },
      async drain() {
        while (running !== null) await running;
      },
    };
  }

  function wrapperFiles(language: SandboxLanguage): Array<readonly [string, string | Buffer]> {
    if (language === 'javascript') return [[BOX_FILES.javascriptHost, QUICKJS_HOST]];
    return [
      [BOX_FILES.pythonWrapper, PYTHON_WRAPPER],
      ...(execFilter === null ? [] : [[BOX_FILES.execFilter, execFilter] as const]),
    ];
  }

  /**
   * The per-process rlimits of a box, as `prlimit` options: backstops behind the cgroups and the supervisor.
   * They can be set outside the box (they count per process). RLIMIT_NPROC cannot: set outside the box's
   * user namespace it would count every process of the sandbox user on the host, across jobs.
   */
  function processLimitOptions(): string[] {
    return ['--core=0', `--fsize=${fileBytes}`, `--cpu=${cpuSeconds}`];
  }

  function guestCommand(language: SandboxLanguage, dirs: JobDirs, qjsRoot: string): string[] {
    // Inside a bwrap box the job's directories are /box and /work; without one, their host paths.
    const boxDir = isolated ? BOX_DIR : dirs.boxDir;
    const workDir = isolated ? WORK_DIR : dirs.workDir;
    if (language === 'python') {
      // -I: ignore PYTHON* variables and user site; -S: no site module (faster start, no site-packages).
      // The wrapper sets the same rlimits itself before any guest code (no prlimit process).
      return [
        pythonPath,
        '-I',
        '-S',
        `${boxDir}/${BOX_FILES.pythonWrapper}`,
        boxDir,
        // Without a user namespace RLIMIT_NPROC would count every process of the uid on the host.
        String(isolated ? maxProcesses : -1),
        String(fileBytes),
        String(cpuSeconds),
        execFilter === null ? '-' : `${boxDir}/${BOX_FILES.execFilter}`,
      ];
    }
    // JavaScript runs in QuickJS (WebAssembly) hosted by Node: the host caps the engine's memory itself, and
    // the memory cgroup bounds the whole box. RLIMIT_AS would kill V8 at start-up. In a bwrap box the runner
    // sets the rlimits on bwrap's held child (no prlimit in the box); without a box prlimit runs in front.
    return [
      ...(isolated ? [] : [prlimitPath, ...processLimitOptions(), '--']),
      nodePath,
      ...QUICKJS_NODE_FLAGS,
      `${boxDir}/${BOX_FILES.javascriptHost}`,
      isolated ? QUICKJS_BOX_ROOT : qjsRoot,
      boxDir,
      workDir,
    ];
  }

  /** A box that could not be prepared: it reports why when its job runs. */
  function failedBox(
    language: SandboxLanguage,
    setupError: string,
    dirs: JobDirs | null,
    cgroup: JobCgroup | null,
  ): Box {
    cleaner.schedule(dirs, cgroup);
    return {
      language,
      dirs: null,
      cgroup: null,
      process: null,
      setupError,
      ready: Promise.resolve(false),
      isIdle: () => false,
      discard: () => Promise.resolve(),
    };
  }

  /** Starts one box for `language`: directories, cgroup, tmpfs, bwrap; `ready` once the wrapper waits. */
  async function prepareBox(language: SandboxLanguage): Promise<Box> {
    let dirs: JobDirs | null = null;
    let cgroup: JobCgroup | null = null;
    try {
      await sweepOrphansOnce();
      dirs = await makeBoxDirs(`${BOX_DIR_PREFIX}${process.pid}-`, wrapperFiles(language));
    } catch (error) {
      return failedBox(language, `could not prepare the job directory: ${describeError(error)}`, dirs, null);
    }
    const cgroups = await getCgroups();
    if (cgroups.kind !== 'none' && credentials !== undefined) {
      try {
        cgroup = await cgroups.create(`job-${process.pid}-${(boxCounter += 1)}-${Date.now()}`, {
          memoryBytes: defaultMemoryMb * 1024 * 1024,
          // bwrap's own processes count too.
          maxProcesses: maxProcesses + 4,
        });
      } catch (error) {
        return failedBox(language, `could not create the job's cgroup: ${describeError(error)}`, dirs, null);
      }
    }
    let qjsRoot = QUICKJS_BOX_ROOT;
    let binds: BoxBind[] = [];
    if (language === 'javascript') {
      try {
        const hostRoot = await getQuickjsRoot();
        binds = [{ hostPath: hostRoot, boxPath: QUICKJS_BOX_ROOT }];
        if (!isolated) qjsRoot = hostRoot;
      } catch (error) {
        return failedBox(
          language,
          `could not find the JavaScript engine: ${describeError(error)}`,
          dirs,
          cgroup,
        );
      }
    }
    let root: readonly BoxBind[] = [];
    try {
      if (isolated) root = (await getRootBinds())[language];
      // On the host, by the runner: the job's working directory gets its own size-capped tmpfs.
      if (workStorage === 'tmpfs' && credentials !== undefined) {
        await runTool(mountPath, [
          '-n',
          '-t',
          'tmpfs',
          '-o',
          tmpfsOptions(credentials),
          'tandem-sandbox',
          dirs.workDir,
        ]);
      }
    } catch (error) {
      return failedBox(language, `could not prepare the box: ${describeError(error)}`, dirs, cgroup);
    }
    const command = guestCommand(language, dirs, qjsRoot);
    const inputs = seccomp === null ? [] : [seccomp];
    // A JavaScript box's rlimits (Python's wrapper sets its own): the per-process ones by `prlimit` exec'ing
    // bwrap (an exec, no process of its own), inherited by all the box starts. The process limit only where no
    // pids cgroup binds: set on bwrap's held child, inside the box's user namespace (see `join`).
    const javascriptBox = isolated && language === 'javascript';
    const nprocOnChild = javascriptBox && cgroup === null;
    const ownCgroupForJoin = cgroup;
    /**
     * Before anything of the job runs (see `attach` in box-process.ts): the box's processes join its cgroups,
     * and a JavaScript box without a pids cgroup gets its process limit.
     */
    const join = async (pids: readonly number[]): Promise<void> => {
      if (ownCgroupForJoin !== null) await ownCgroupForJoin.join(pids);
      const child = pids[0];
      if (nprocOnChild && child !== undefined) {
        // As the sandbox user, whose process it is: lowering its limits needs no privilege, while root would
        // need CAP_SYS_RESOURCE (which a container's root may lack; this machine's kind does).
        await runTool(prlimitPath, [`--pid=${child}`, `--nproc=${maxProcesses}`], credentials);
      }
    };
    const needsJoin = cgroup !== null || nprocOnChild;
    const bwrapArgs = buildBwrapArgs({
      root,
      boxDir: dirs.boxDir,
      workDir: dirs.workDir,
      tmpBytes,
      seccompFd: seccomp === null ? null : SECCOMP_FD,
      binds,
      ...(needsJoin ? { hold: holdFds(inputs.length) } : {}),
      command,
    });
    const launch = !isolated
      ? { file: command[0] ?? pythonPath, args: command.slice(1) }
      : javascriptBox
        ? { file: prlimitPath, args: [...processLimitOptions(), '--', bwrapPath, ...bwrapArgs] }
        : { file: bwrapPath, args: bwrapArgs };
    const boxProcess = startBox({
      ...launch,
      // Spawned as the sandbox user by the runner itself (no setpriv, no launcher shell): started by root,
      // bwrap would run the guest as host root (its --uid only maps inside the namespace).
      ...(credentials === undefined ? {} : { credentials }),
      ...(needsJoin ? { attach: { when: isolated ? ('held' as const) : ('ready' as const), join } } : {}),
      endOnReport: language === 'javascript',
      // bwrap changes into /work itself (--chdir); without a box the guest starts in its working directory.
      cwd: isolated ? '/' : dirs.workDir,
      inputs,
      maxResultBytes: maxResultBytes + 64,
      startOutputBytes: 64 * 1024,
      startTimeoutMs,
      settleMs: SETTLE_MS,
      readyMarker,
    });
    const ownDirs = dirs;
    const ownCgroup = cgroup;
    return {
      language,
      dirs: ownDirs,
      cgroup: ownCgroup,
      process: boxProcess,
      setupError: null,
      ready: boxProcess.ready,
      isIdle: () => boxProcess.isIdle(),
      async discard() {
        await boxProcess.discard();
        cleaner.schedule(ownDirs, ownCgroup);
      },
    };
  }

  function tmpfsOptions(owner: { uid: number; gid: number }): string {
    return [
      `size=${workBytes}`,
      `nr_inodes=${workInodes}`,
      'mode=0700',
      `uid=${owner.uid}`,
      `gid=${owner.gid}`,
      'nosuid',
      'nodev',
      // A file the guest writes there cannot be started (Python's own filter already refuses any exec).
      'noexec',
    ].join(',');
  }

  /**
   * A box object at once, started in the background: the pool holds it while it starts. Its `ready`
   * resolves when the wrapper waits for its job (false if anything failed on the way).
   */
  function startPreparedBox(language: SandboxLanguage): Box {
    const prepared = prepareBox(language);
    let resolved: Box | null = null;
    void prepared.then((box) => {
      resolved = box;
    });
    return {
      language,
      get dirs() {
        return resolved?.dirs ?? null;
      },
      get cgroup() {
        return resolved?.cgroup ?? null;
      },
      get process() {
        return resolved?.process ?? null;
      },
      get setupError() {
        return resolved?.setupError ?? null;
      },
      ready: prepared.then((box) => box.ready),
      isIdle: () => resolved?.isIdle() ?? false,
      discard: async () => (await prepared).discard(),
    };
  }

  const pools: Record<SandboxLanguage, WarmPool<Box>> = {
    python: createWarmPool({ size: poolSize, start: () => startPreparedBox('python') }),
    javascript: createWarmPool({ size: poolSize, start: () => startPreparedBox('javascript') }),
  };
  let closed = false;

  /** Collects the working directory; whatever happens, a result rather than a throw. */
  async function collect(job: SandboxJob, dirs: JobDirs, inputFiles: SandboxFile[]): Promise<CollectedFiles> {
    try {
      return await collectWorkFiles(dirs.workDir, inputFiles, {
        maxFiles: job.limits.maxFiles ?? FILE_DEFAULTS.maxFiles,
        maxFileBytes: job.limits.maxFileBytes ?? FILE_DEFAULTS.maxFileBytes,
        maxTotalFileBytes: job.limits.maxTotalFileBytes ?? FILE_DEFAULTS.maxTotalFileBytes,
        maxEntries: maxCollectEntries,
        ...COLLECT_BOUNDS,
      });
    } catch {
      return { files: [], deletedFiles: [], filesTruncated: true };
    }
  }

  /** Hands the job to a ready box: its files, its memory limit, then the go line; interprets what came back. */
  async function runInBox(
    job: SandboxJob,
    box: Box,
    inputJson: string,
    inputFiles: SandboxFile[],
    runOptions: SandboxRunOptions,
  ): Promise<SandboxResult> {
    const empty = emptyResult();
    const boxProcess = box.process;
    const dirs = box.dirs;
    if (box.setupError !== null || boxProcess === null || dirs === null) {
      return {
        ...empty,
        outcome: 'sandbox_error',
        errorMessage: box.setupError ?? 'the sandbox did not start',
      };
    }
    const memoryMb = job.limits.memoryMb ?? defaultMemoryMb;
    const memoryBytes = memoryMb * 1024 * 1024;
    if (await boxProcess.ready) {
      try {
        // Root wrote them after the box started: code and input readable by the sandbox user.
        const code = job.language === 'python' ? BOX_FILES.pythonCode : BOX_FILES.javascriptCode;
        // Synchronous: two small files, where each promise-based write costs thread-pool round trips.
        writeFileSync(path.join(dirs.boxDir, code), job.code, { mode: 0o444 });
        writeFileSync(path.join(dirs.boxDir, BOX_FILES.input), inputJson, { mode: 0o444 });
        await writeInputFiles(dirs.workDir, inputFiles, credentials);
      } catch (error) {
        await boxProcess.discard();
        return {
          ...empty,
          outcome: 'sandbox_error',
          errorMessage: `could not hand the job to its sandbox: ${describeError(error)}`,
        };
      }
      if (box.cgroup !== null) {
        try {
          await box.cgroup.setMemoryLimit(memoryBytes);
        } catch {
          await boxProcess.discard();
          return {
            ...empty,
            outcome: 'memory_limit',
            errorMessage: `the memory limit of ${memoryMb} MB is too small to start the ${job.language} interpreter`,
          };
        }
      }
    }
    // Python applies the memory as RLIMIT_AS around the user's code (a clean MemoryError before the cgroup's
    // OOM kill); the JavaScript host gives it to its engine.
    const wrapperMemory =
      job.limits.memoryMb === undefined
        ? 0
        : job.language === 'javascript'
          ? Math.max(JAVASCRIPT_MIN_HEAP_BYTES, memoryBytes - JAVASCRIPT_HOST_BYTES)
          : memoryBytes;
    const observed = await boxProcess.go({
      line: `${wrapperMemory} ${Math.ceil(job.limits.timeoutMs)}\n`,
      timeoutMs: job.limits.timeoutMs,
      maxOutputBytes: job.limits.maxOutputBytes,
      ...(runOptions.signal === undefined ? {} : { signal: runOptions.signal }),
    });
    const stats = box.cgroup === null ? null : await box.cgroup.stats();
    let result = interpret(job, observed, bwrapPath, maxResultBytes, memoryMb);
    if (stats?.oomKilled === true && observed.killReason === null) {
      // The kernel killed a process of the job at its memory limit (any memory: ArrayBuffers, threads).
      result = {
        ...result,
        outcome: 'memory_limit',
        value: null,
        errorMessage: `the program went over its memory limit of ${memoryMb} MB`,
      };
    }
    // Read only now, by the runner: the guest never reports its own files.
    return {
      ...result,
      peakMemoryBytes: stats?.peakMemoryBytes ?? null,
      ...(await collect(job, dirs, inputFiles)),
    };
  }

  async function run(job: SandboxJob, runOptions: SandboxRunOptions = {}): Promise<SandboxResult> {
    const { inputJson, files: inputFiles } = assertValidJob(job);
    const empty = emptyResult();
    if (runOptions.signal?.aborted === true) {
      return { ...empty, outcome: 'killed', errorMessage: 'the run was aborted before it started' };
    }
    if (closed) {
      return { ...empty, outcome: 'sandbox_error', errorMessage: 'the sandbox backend was closed' };
    }
    const inputBytes = inputFiles.reduce((sum, file) => sum + file.content.length, 0);
    if (inputBytes > workBytes) {
      return {
        ...empty,
        outcome: 'sandbox_error',
        errorMessage: `the job's files (${inputBytes} bytes) do not fit the working directory (${workBytes} bytes)`,
      };
    }
    const box = await pools[job.language].acquire();
    try {
      return await runInBox(job, box, inputJson, inputFiles, runOptions);
    } finally {
      // Off the job's path: kill whatever is left in the job's cgroups (a daemon that left the process group
      // included; the pid namespace normally took everything with it already), remove them and the dirs.
      cleaner.schedule(box.dirs, box.cgroup);
      // The replacement starts once the caller has its result (spawning is synchronous work here).
      setImmediate(() => pools[job.language].refill());
    }
  }

  async function check(): Promise<SandboxCheck> {
    const problems: string[] = [];
    const tools: Array<readonly [string, string]> = [
      ...(isolated ? [['bubblewrap', bwrapPath] as const] : []),
      ['prlimit', prlimitPath],
      ['python', pythonPath],
      ['node', nodePath],
    ];
    if (workStorage === 'tmpfs') tools.push(['mount', mountPath], ['umount', umountPath]);
    else tools.push(['rm', RM_PATH]);
    const cgroups = await getCgroups();
    const warnings = [...cgroups.missing, ...(isolated ? [] : PROCESS_BACKEND_GAPS)];
    for (const [what, file] of tools) {
      try {
        await access(file, fsConstants.X_OK);
      } catch {
        problems.push(
          `${what} is not an executable at ${file}${what === 'bubblewrap' ? ' (apt-get install bubblewrap)' : ''}`,
        );
      }
    }
    if (workStorage === 'tmpfs' && credentials === undefined) {
      problems.push('a tmpfs working directory needs a root runner (use workStorage "directory")');
    }
    try {
      const info = await stat(scratchRoot);
      // bwrap runs as the sandbox user and must traverse the scratch root to bind the job dir.
      if (credentials !== undefined && info.uid !== credentials.uid && (info.mode & 0o001) === 0) {
        problems.push(`scratch root ${scratchRoot} is not searchable by uid ${credentials.uid}`);
      }
    } catch (error) {
      problems.push(`scratch root ${scratchRoot} is unusable: ${describeError(error)}`);
    }
    if (problems.length > 0 || !isolated) return { ok: problems.length === 0, problems, warnings };

    let root: BoxRoot;
    try {
      root = await getRootBinds();
    } catch (error) {
      problems.push(`could not find what the box must hold of the interpreters: ${describeError(error)}`);
      return { ok: false, problems, warnings };
    }
    // The probe goes through the same directories and binds as a Python job (bwrap started directly, no
    // cgroup): the interpreter itself writes the ready marker, since the box holds nothing else to run.
    let dirs: JobDirs | undefined;
    try {
      dirs = await makeBoxDirs(`${BOX_DIR_PREFIX}${process.pid}-check-`, []);
      const probe = startBox({
        file: bwrapPath,
        args: buildBwrapArgs({
          root: root.python,
          boxDir: dirs.boxDir,
          workDir: dirs.workDir,
          tmpBytes,
          seccompFd: seccomp === null ? null : SECCOMP_FD,
          command: [
            pythonPath,
            '-I',
            '-S',
            '-c',
            `import os; os.write(3, ${JSON.stringify(READY_MARKER)}.encode())`,
          ],
        }),
        ...(seccomp === null ? {} : { inputs: [seccomp] }),
        ...(credentials === undefined ? {} : { credentials }),
        maxResultBytes: 1024,
        startOutputBytes: 64 * 1024,
        startTimeoutMs: CHECK_TIMEOUT_MS,
        settleMs: SETTLE_MS,
        readyMarker,
      });
      const observed = await probe.go({ line: '', timeoutMs: CHECK_TIMEOUT_MS, maxOutputBytes: 64 * 1024 });
      if (observed.spawnError !== null) {
        problems.push(`could not start bubblewrap at ${bwrapPath}: ${observed.spawnError.message}`);
      } else if (observed.exitCode !== 0 || !observed.result.bytes.equals(readyMarker)) {
        const detail = observed.stderr.bytes.toString('utf8').trim();
        const status =
          observed.killReason ?? `exit code ${String(observed.exitCode)}, signal ${String(observed.signal)}`;
        problems.push(
          `bubblewrap could not run ${pythonPath} in the box (${status})${detail === '' ? '' : `: ${detail}`}`,
        );
      }
    } catch (error) {
      problems.push(`could not prepare a probe directory: ${describeError(error)}`);
    } finally {
      if (dirs !== undefined) {
        const probeDirs = dirs;
        await removeBoxDirs(probeDirs).catch((error: unknown) => {
          problems.push(`could not remove the probe directory: ${describeError(error)}`);
        });
      }
    }
    return { ok: problems.length === 0, problems, warnings };
  }

  return {
    name: isolated ? 'bwrap' : 'process',
    run,
    check,
    warm() {
      if (closed) return;
      pools.python.fill();
      pools.javascript.fill();
    },
    drain: () => cleaner.drain(),
    async close() {
      closed = true;
      await Promise.all([pools.python.close(), pools.javascript.close()]);
      await cleaner.drain();
      // Hard links and directories only: removing them leaves the host's files as they are.
      for (const dir of linkedRoots) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      if (quickjsRoot !== undefined) {
        const root = await quickjsRoot.catch(() => null);
        if (root !== null) await rm(root, { recursive: true, force: true }).catch(() => undefined);
      }
    },
  };
}

/** What the `process` backend does not enforce, for its check (logs and /readyz). */
const PROCESS_BACKEND_GAPS = [
  'no namespaces (the weaker "process" backend was chosen): the guest can read every host file uid 65534 may read',
  'no network isolation: the guest can reach the network, including services on 127.0.0.1',
  'no pid isolation: the guest sees host processes (and can signal those of its own uid)',
  'no syscall filter (seccomp needs the bubblewrap backend)',
] as const;

const isKnownArch = (arch: string): boolean => SECCOMP_ARCHES.some((name) => name === arch);

/** The shape of a result before anything ran. */
function emptyResult(): SandboxResult {
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

/** A host without per-job cgroups: every job falls back to rlimits; `missing` says what that loses. */
function noCgroups(why: string): CgroupSupport {
  return {
    kind: 'none',
    missing: [
      `memory cgroup (${why}): the memory limit is RLIMIT_AS for Python and a V8 heap cap for JavaScript only`,
      `pids cgroup (${why}): the process limit is RLIMIT_NPROC, which does not bind root and counts across jobs`,
    ],
    create: () => Promise.reject(new Error('no cgroups')),
    sweepOrphans: () => Promise.resolve(0),
  };
}
