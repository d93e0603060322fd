import { detectCgroups, type CgroupSupport, type JobCgroup } from './cgroups.js';
import { execFile } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, chmod, chown, lstat, mkdir, mkdtemp, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { constants as osConstants, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { runBoxProcess, type BoxProcessOutcome, type CappedBytes, type KillReason } from './box-process.js';
import { parseGuestReport } from './guest-report.js';
import { BOX_DIR, BOX_FILES, JAVASCRIPT_WRAPPER, PYTHON_WRAPPER, WORK_DIR } from './guest-wrappers.js';
import type {
  SandboxBackend,
  SandboxCheck,
  SandboxFile,
  SandboxJob,
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
  /** Default `/usr/bin/python3`; must live under `/usr` (the only host tree bound into the box). */
  pythonPath?: string;
  /** Default `/usr/bin/node`; must live under `/usr`. Not `process.execPath`, which may be anywhere. */
  nodePath?: string;
  /** Default `/usr/bin/prlimit` (util-linux); sets per-job rlimits inside the box. */
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
  /** Default `/usr/bin/setpriv`; drops to the sandbox user after the launcher joined the job's cgroups. */
  setprivPath?: string;
  /** Default `/usr/bin/mount`; used for the `tmpfs` working directory. */
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
/** Budget for the `/bin/true` probe in `check()`. */
const CHECK_TIMEOUT_MS = 10_000;
/** The only host tree bound into the box; interpreters must live under it. */
const SYSTEM_TREE = '/usr';
/** Top-level names that are either symlinks into /usr (merged-usr) or real system dirs to bind. */
const SYSTEM_LINKS = ['/bin', '/sbin', '/lib', '/lib64'] as const;

type RootEntry = { kind: 'symlink'; path: string; target: string } | { kind: 'bind'; path: string };

/** Inspects the host's /bin, /lib, ... once: merged-usr hosts get symlinks, others read-only binds. */
async function describeSystemRoot(): Promise<RootEntry[]> {
  const entries: RootEntry[] = [];
  for (const entry of SYSTEM_LINKS) {
    try {
      const info = await lstat(entry);
      if (info.isSymbolicLink())
        entries.push({ kind: 'symlink', path: entry, target: await readlink(entry) });
      else if (info.isDirectory()) entries.push({ kind: 'bind', path: entry });
    } catch {
      // Absent on this host (e.g. no /lib64): nothing to provide.
    }
  }
  return entries;
}

/**
 * The bwrap argv for one box. Namespaces: all (user, pid, net, ipc, uts, cgroup, mount); no network
 * device but loopback. Filesystem: an empty read-only root with /usr (+ merged-usr links) and
 * /etc/ld.so.cache read-only, fresh /proc and /dev, the job's box dir read-only at /box, the job's own
 * working directory read-write at /work (the cwd), and a size-capped tmpfs at /tmp. Environment: cleared,
 * then four fixed variables.
 */
function buildBwrapArgs(params: {
  root: RootEntry[];
  boxDir: string;
  workDir: string;
  tmpBytes: number;
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
    '--ro-bind',
    SYSTEM_TREE,
    SYSTEM_TREE,
  ];
  for (const entry of params.root) {
    if (entry.kind === 'symlink') args.push('--symlink', entry.target, entry.path);
    else args.push('--ro-bind', entry.path, entry.path);
  }
  args.push(
    '--ro-bind-try',
    '/etc/ld.so.cache',
    '/etc/ld.so.cache',
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--ro-bind',
    params.boxDir,
    BOX_DIR,
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
    '--clearenv',
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
  let exitCode = observed.exitCode;
  let signal: string | null = observed.signal;
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

  const report = parseGuestReport(observed.result.bytes);
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
    const outcome = report.errorKind === 'memory' ? 'memory_limit' : 'error';
    return { ...base, ...status, outcome, errorMessage: report.message };
  }
  // V8 aborts on heap exhaustion instead of throwing; the message is the only sign.
  if (job.language === 'javascript' && signal === 'SIGABRT' && stderr.includes('heap out of memory')) {
    return {
      ...base,
      ...status,
      outcome: 'memory_limit',
      errorMessage: 'the JavaScript heap exceeded its memory limit',
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

function isUnder(tree: string, file: string): boolean {
  return path.resolve(file).startsWith(`${tree}/`);
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Runs a host tool the runner needs (mount, umount, rm) with an empty environment; throws on failure. */
async function runTool(file: string, args: readonly string[]): Promise<void> {
  try {
    await execFileAsync(file, [...args], {
      env: {},
      cwd: '/',
      timeout: TOOL_TIMEOUT_MS,
      maxBuffer: 64 * 1024,
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

/** One job's host directories: `jobDir` holds `box` (read-only /box) and `work` (read-write /work). */
interface JobDirs {
  jobDir: string;
  boxDir: string;
  workDir: string;
  /** Whether `workDir` currently has the job's tmpfs mounted on it. */
  mounted: boolean;
}

/**
 * Creates the bubblewrap backend. Each job runs in a fresh bwrap box: own user, pid, net, mount, ipc and
 * uts namespaces, an empty read-only root with only /usr, its own working directory and a size-capped /tmp
 * to write to, an empty environment, host uid 65534 when the runner is root, and a wall-clock SIGKILL.
 * After the box is gone the runner collects what the guest wrote to its working directory.
 *
 * Not enforced yet (a later issue adds a per-job cgroup and a warm pool): total memory (JavaScript memory
 * outside the V8 heap, SysV shared memory and the tmpfs mounts up to `workBytes` + `tmpBytes` are not
 * counted anywhere), CPU share between concurrent jobs, and a syscall filter (no seccomp).
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
  const setprivPath = options.setprivPath ?? '/usr/bin/setpriv';
  const defaultMemoryMb = options.defaultMemoryMb ?? 1024;
  let cgroupSupport: Promise<CgroupSupport> | undefined;
  const getCgroups = (): Promise<CgroupSupport> =>
    (cgroupSupport ??=
      options.cgroups === 'off' || process.getuid?.() !== 0
        ? Promise.resolve(noCgroups(options.cgroups === 'off' ? 'turned off' : 'the runner is not root'))
        : options.cgroups !== undefined
          ? Promise.resolve(options.cgroups)
          : detectCgroups());
  let jobCounter = 0;
  // Started by root, bwrap would run the guest as host root (its --uid only maps inside the namespace):
  // bwrap itself must be spawned as the unprivileged user.
  const credentials = process.getuid?.() === 0 ? (options.sandboxUser ?? DEFAULTS.sandboxUser) : undefined;
  // Mounting needs root; without it the working directory is a plain directory.
  const workStorage = options.workStorage ?? (credentials === undefined ? 'directory' : 'tmpfs');

  let systemRoot: Promise<RootEntry[]> | undefined;
  const getSystemRoot = (): Promise<RootEntry[]> => (systemRoot ??= describeSystemRoot());

  async function makeJobDirs(prefix: string): Promise<JobDirs> {
    const jobDir = await mkdtemp(path.join(scratchRoot, prefix));
    return { jobDir, boxDir: path.join(jobDir, 'box'), workDir: path.join(jobDir, 'work'), mounted: false };
  }

  /**
   * Fills fresh job dirs: the box files read-only, then an empty working directory that only the sandbox
   * user can enter (a tmpfs of its own, or a plain directory), then the job's files in it, owned by the
   * sandbox user so the guest may change or delete them.
   */
  async function fillJobDirs(
    dirs: JobDirs,
    boxFiles: ReadonlyArray<readonly [string, string]>,
    inputFiles: readonly SandboxFile[],
  ): Promise<void> {
    await mkdir(dirs.boxDir, { mode: 0o700 });
    for (const [name, content] of boxFiles) {
      const file = path.join(dirs.boxDir, name);
      await writeFile(file, content, { mode: 0o400 });
      if (credentials !== undefined) await chown(file, credentials.uid, credentials.gid);
    }
    if (credentials !== undefined) await chown(dirs.boxDir, credentials.uid, credentials.gid);
    await chmod(dirs.boxDir, 0o500);

    await mkdir(dirs.workDir, { mode: 0o700 });
    if (workStorage === 'tmpfs') {
      const owner = credentials ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
      const mountOptions = [
        `size=${workBytes}`,
        `nr_inodes=${workInodes}`,
        'mode=0700',
        `uid=${owner.uid}`,
        `gid=${owner.gid}`,
        'nosuid',
        'nodev',
      ].join(',');
      await runTool(mountPath, ['-n', '-t', 'tmpfs', '-o', mountOptions, 'tandem-sandbox', dirs.workDir]);
      dirs.mounted = true;
    } else if (credentials !== undefined) {
      await chown(dirs.workDir, credentials.uid, credentials.gid);
    }
    await writeInputFiles(dirs.workDir, inputFiles, credentials);

    // bwrap runs as the sandbox user and must traverse the job dir to bind both halves.
    if (credentials !== undefined) await chown(dirs.jobDir, credentials.uid, credentials.gid);
    await chmod(dirs.jobDir, 0o500);
  }

  /** Removes a job's dirs: unmounts its tmpfs, or removes however deep a tree the guest left. */
  async function removeJobDirs(dirs: JobDirs): Promise<void> {
    if (dirs.mounted) {
      // Lazy: a guest process still dying after a kill may hold it; the memory goes with the last user.
      await runTool(umountPath, ['-l', dirs.workDir]);
      dirs.mounted = false;
    } else if (workStorage === 'directory') {
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

  function boxFilesFor(job: SandboxJob, inputJson: string): Array<readonly [string, string]> {
    return job.language === 'python'
      ? [
          [BOX_FILES.pythonWrapper, PYTHON_WRAPPER],
          [BOX_FILES.pythonCode, job.code],
          [BOX_FILES.input, inputJson],
        ]
      : [
          [BOX_FILES.javascriptWrapper, JAVASCRIPT_WRAPPER],
          [BOX_FILES.javascriptCode, job.code],
          [BOX_FILES.input, inputJson],
        ];
  }

  function guestCommand(job: SandboxJob): string[] {
    const limits = [prlimitPath, `--nproc=${maxProcesses}`, '--core=0'];
    // A plain working directory has no size of its own: at least no single file may outgrow the cap.
    if (workStorage === 'directory') limits.push(`--fsize=${workBytes}`);
    limits.push('--');
    if (job.language === 'python') {
      const memoryBytes = job.limits.memoryMb === undefined ? 0 : job.limits.memoryMb * 1024 * 1024;
      // -I: ignore PYTHON* variables and user site; -S: no site module (faster start, no site-packages).
      return [
        ...limits,
        pythonPath,
        '-I',
        '-S',
        `${BOX_DIR}/${BOX_FILES.pythonWrapper}`,
        String(memoryBytes),
      ];
    }
    // RLIMIT_AS kills V8 at start-up, so JavaScript gets only a V8 old-space cap; the memory cgroup
    // (later issue) is what bounds it for real.
    const heap = job.limits.memoryMb === undefined ? [] : [`--max-old-space-size=${job.limits.memoryMb}`];
    return [...limits, nodePath, ...heap, `${BOX_DIR}/${BOX_FILES.javascriptWrapper}`];
  }

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

  async function run(job: SandboxJob, runOptions: SandboxRunOptions = {}): Promise<SandboxResult> {
    const { inputJson, files: inputFiles } = assertValidJob(job);
    const empty = {
      stdout: '',
      stderr: '',
      stdoutTruncated: false,
      stderrTruncated: false,
      value: null,
      exitCode: null,
      signal: null,
      files: [],
      deletedFiles: [],
      filesTruncated: false,
    };
    if (runOptions.signal?.aborted === true) {
      return {
        ...empty,
        outcome: 'killed',
        durationMs: 0,
        errorMessage: 'the run was aborted before it started',
      };
    }
    const inputBytes = inputFiles.reduce((sum, file) => sum + file.content.length, 0);
    if (inputBytes > workBytes) {
      return {
        ...empty,
        outcome: 'sandbox_error',
        durationMs: 0,
        errorMessage: `the job's files (${inputBytes} bytes) do not fit the working directory (${workBytes} bytes)`,
      };
    }

    let dirs: JobDirs | undefined;
    let cgroup: JobCgroup | undefined;
    try {
      try {
        dirs = await makeJobDirs('tandem-sandbox-');
        await fillJobDirs(dirs, boxFilesFor(job, inputJson), inputFiles);
      } catch (error) {
        return {
          ...empty,
          outcome: 'sandbox_error',
          durationMs: 0,
          errorMessage: `could not prepare the job directory: ${describeError(error)}`,
        };
      }
      const args = buildBwrapArgs({
        root: await getSystemRoot(),
        boxDir: dirs.boxDir,
        workDir: dirs.workDir,
        tmpBytes,
        command: guestCommand(job),
      });
      const cgroups = await getCgroups();
      if (cgroups.kind !== 'none' && credentials !== undefined) {
        try {
          cgroup = await cgroups.create(`job-${process.pid}-${(jobCounter += 1)}-${Date.now()}`, {
            memoryBytes: (job.limits.memoryMb ?? defaultMemoryMb) * 1024 * 1024,
            // bwrap's own processes and the launcher count too.
            maxProcesses: maxProcesses + 4,
          });
        } catch (error) {
          return {
            ...empty,
            outcome: 'sandbox_error',
            durationMs: 0,
            errorMessage: `could not create the job's cgroup: ${describeError(error)}`,
          };
        }
      }
      const launch =
        cgroup !== undefined && credentials !== undefined
          ? {
              // A root launcher joins the job's cgroups first, then drops to the sandbox user and execs
              // bwrap: every process of the job is in the cgroups before any guest code runs.
              file: '/bin/sh',
              args: [
                '-c',
                'while [ "$1" != "--" ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"',
                'tandem-launch',
                ...cgroup.procsFiles,
                '--',
                // The shell exports PWD; `env -i` keeps bwrap's own environment (readable at /proc/1/environ) empty.
                '/usr/bin/env',
                '-i',
                setprivPath,
                `--reuid=${credentials.uid}`,
                `--regid=${credentials.gid}`,
                '--clear-groups',
                bwrapPath,
                ...args,
              ],
            }
          : { file: bwrapPath, args, ...(credentials === undefined ? {} : { credentials }) };
      const observed = await runBoxProcess({
        ...launch,
        timeoutMs: job.limits.timeoutMs,
        maxOutputBytes: job.limits.maxOutputBytes,
        maxResultBytes: maxResultBytes + 64,
        settleMs: SETTLE_MS,
        ...(runOptions.signal === undefined ? {} : { signal: runOptions.signal }),
      });
      const stats = cgroup === undefined ? null : await cgroup.stats();
      let result = interpret(job, observed, bwrapPath, maxResultBytes);
      if (stats?.oomKilled === true && observed.killReason === null) {
        // The kernel killed a process of the job at its memory limit (any memory: ArrayBuffers, threads).
        const limitMb = job.limits.memoryMb ?? defaultMemoryMb;
        result = {
          ...result,
          outcome: 'memory_limit',
          value: null,
          errorMessage: `the program went over its memory limit of ${limitMb} MB`,
        };
      }
      // Read only now, by the runner: the guest never reports its own files.
      return {
        ...result,
        peakMemoryBytes: stats?.peakMemoryBytes ?? null,
        ...(await collect(job, dirs, inputFiles)),
      };
    } finally {
      // Kill whatever is left in the job's cgroups (a daemon that left the process group included).
      if (cgroup !== undefined) await cgroup.destroy();
      if (dirs !== undefined) await removeJobDirs(dirs);
    }
  }

  async function check(): Promise<SandboxCheck> {
    const problems: string[] = [];
    const tools: Array<readonly [string, string]> = [
      ['bubblewrap', bwrapPath],
      ['prlimit', prlimitPath],
      ['python', pythonPath],
      ['node', nodePath],
    ];
    if (workStorage === 'tmpfs') tools.push(['mount', mountPath], ['umount', umountPath]);
    else tools.push(['rm', RM_PATH]);
    const cgroups = await getCgroups();
    const warnings = [...cgroups.missing];
    if (cgroups.kind !== 'none')
      tools.push(['setpriv', setprivPath], ['sh', '/bin/sh'], ['env', '/usr/bin/env']);
    for (const [what, file] of tools) {
      try {
        await access(file, fsConstants.X_OK);
      } catch {
        problems.push(
          `${what} is not an executable at ${file}${what === 'bubblewrap' ? ' (apt-get install bubblewrap)' : ''}`,
        );
        continue;
      }
      if ((what === 'python' || what === 'node' || what === 'prlimit') && !isUnder(SYSTEM_TREE, file)) {
        problems.push(`${what} at ${file} is outside ${SYSTEM_TREE}, the only host tree bound into the box`);
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
    if (problems.length > 0) return { ok: false, problems, warnings };

    // The probe goes through the same directories, mount and binds as a job.
    let dirs: JobDirs | undefined;
    try {
      dirs = await makeJobDirs('tandem-sandbox-check-');
      await fillJobDirs(dirs, [], []);
      const observed = await runBoxProcess({
        file: bwrapPath,
        args: buildBwrapArgs({
          root: await getSystemRoot(),
          boxDir: dirs.boxDir,
          workDir: dirs.workDir,
          tmpBytes,
          command: ['/bin/true'],
        }),
        ...(credentials === undefined ? {} : { credentials }),
        timeoutMs: CHECK_TIMEOUT_MS,
        maxOutputBytes: 64 * 1024,
        maxResultBytes: 1024,
        settleMs: SETTLE_MS,
      });
      if (observed.spawnError !== null) {
        problems.push(`could not start bubblewrap at ${bwrapPath}: ${observed.spawnError.message}`);
      } else if (observed.exitCode !== 0) {
        const detail = observed.stderr.bytes.toString('utf8').trim();
        const status =
          observed.killReason ?? `exit code ${String(observed.exitCode)}, signal ${String(observed.signal)}`;
        problems.push(
          `bubblewrap could not run /bin/true in the box (${status})${detail === '' ? '' : `: ${detail}`}`,
        );
      }
    } catch (error) {
      problems.push(`could not prepare a probe directory: ${describeError(error)}`);
    } finally {
      if (dirs !== undefined) {
        await removeJobDirs(dirs).catch((error: unknown) => {
          problems.push(`could not remove the probe directory: ${describeError(error)}`);
        });
      }
    }
    return { ok: problems.length === 0, problems, warnings };
  }

  return { name: 'bwrap', run, check };
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
  };
}
