import { constants as fsConstants } from 'node:fs';
import { access, chmod, chown, lstat, mkdtemp, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { constants as osConstants, tmpdir } from 'node:os';
import path from 'node:path';

import { runBoxProcess, type BoxProcessOutcome, type CappedBytes, type KillReason } from './box-process.js';
import { parseGuestReport } from './guest-report.js';
import { BOX_DIR, BOX_FILES, JAVASCRIPT_WRAPPER, PYTHON_WRAPPER } from './guest-wrappers.js';
import type {
  SandboxBackend,
  SandboxCheck,
  SandboxJob,
  SandboxOutcome,
  SandboxResult,
  SandboxRunOptions,
} from './types.js';

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
  /** Where per-job host directories (code, input, wrapper) are made. Default `os.tmpdir()`. */
  scratchRoot?: string;
  /**
   * Host uid/gid bubblewrap (and so the guest) runs as when the runner is root. Default 65534:65534
   * (nobody). Ignored when the runner is not root: the guest then runs as the runner's uid.
   */
  sandboxUser?: { uid: number; gid: number };
  /** Size of the writable tmpfs at `/work` (also reachable as `/tmp`) in bytes. Default 64 MiB. */
  workBytes?: number;
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
  maxResultBytes: 4 * 1024 * 1024,
  maxProcesses: 64,
  sandboxUser: { uid: 65534, gid: 65534 },
} as const;

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
 * /etc/ld.so.cache read-only, fresh /proc and /dev, the job dir read-only at /box, and a size-capped tmpfs
 * at /work (also /tmp). Environment: cleared, then four fixed variables.
 */
function buildBwrapArgs(params: {
  root: RootEntry[];
  jobDir: string;
  workBytes: number;
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
    params.jobDir,
    BOX_DIR,
    '--size',
    String(params.workBytes),
    '--tmpfs',
    '/work',
    '--symlink',
    'work',
    '/tmp',
    // bwrap's root and /dev are tmpfs without a size: read-only, or a guest could fill the host's memory.
    '--remount-ro',
    '/dev',
    '--remount-ro',
    '/',
    '--chdir',
    '/work',
    '--clearenv',
    '--setenv',
    'PATH',
    '/usr/bin:/bin',
    '--setenv',
    'HOME',
    '/work',
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

/** Turns what was observed about a box into the job's result. Pure. */
function interpret(
  job: SandboxJob,
  observed: BoxProcessOutcome,
  bwrapPath: string,
  maxResultBytes: number,
): SandboxResult {
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

function assertValidJob(job: SandboxJob): string {
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
  // Throws for BigInt or cycles; undefined for a function or symbol: either way the input is not JSON.
  const inputJson: string | undefined = JSON.stringify(job.input ?? null);
  if (inputJson === undefined) throw new TypeError('sandbox job input is not JSON');
  return inputJson;
}

/** Removes a job dir; it was made read-only (0500), which stops a non-root owner from emptying it. */
async function removeJobDir(jobDir: string): Promise<void> {
  await chmod(jobDir, 0o700).catch(() => undefined);
  await rm(jobDir, { recursive: true, force: true, maxRetries: 3 });
}

function isUnder(tree: string, file: string): boolean {
  return path.resolve(file).startsWith(`${tree}/`);
}

/**
 * Creates the bubblewrap backend. Each job runs in a fresh bwrap box: own user, pid, net, mount, ipc and
 * uts namespaces, an empty read-only root with only /usr, a size-capped tmpfs to write to, an empty
 * environment, host uid 65534 when the runner is root, and a wall-clock SIGKILL.
 *
 * Not enforced yet (a later issue adds a per-job cgroup and a warm pool): total memory (JavaScript memory
 * outside the V8 heap, SysV shared memory and the /work tmpfs up to `workBytes` are not counted anywhere),
 * CPU share between concurrent jobs, and a syscall filter (no seccomp).
 */
export function createBwrapBackend(options: BwrapBackendOptions = {}): SandboxBackend {
  const bwrapPath = options.bwrapPath ?? DEFAULTS.bwrapPath;
  const pythonPath = options.pythonPath ?? DEFAULTS.pythonPath;
  const nodePath = options.nodePath ?? DEFAULTS.nodePath;
  const prlimitPath = options.prlimitPath ?? DEFAULTS.prlimitPath;
  const scratchRoot = options.scratchRoot ?? tmpdir();
  const workBytes = options.workBytes ?? DEFAULTS.workBytes;
  const maxResultBytes = options.maxResultBytes ?? DEFAULTS.maxResultBytes;
  const maxProcesses = options.maxProcesses ?? DEFAULTS.maxProcesses;
  // Started by root, bwrap would run the guest as host root (its --uid only maps inside the namespace):
  // bwrap itself must be spawned as the unprivileged user.
  const credentials = process.getuid?.() === 0 ? (options.sandboxUser ?? DEFAULTS.sandboxUser) : undefined;

  let systemRoot: Promise<RootEntry[]> | undefined;
  const getSystemRoot = (): Promise<RootEntry[]> => (systemRoot ??= describeSystemRoot());

  /** Makes the per-job host dir: owned by the sandbox user, read-only files, removed by the caller. */
  async function prepareJobDir(job: SandboxJob, inputJson: string): Promise<string> {
    const jobDir = await mkdtemp(path.join(scratchRoot, 'tandem-sandbox-'));
    const files: Array<[string, string]> =
      job.language === 'python'
        ? [
            [BOX_FILES.pythonWrapper, PYTHON_WRAPPER],
            [BOX_FILES.pythonCode, job.code],
          ]
        : [
            [BOX_FILES.javascriptWrapper, JAVASCRIPT_WRAPPER],
            [BOX_FILES.javascriptCode, job.code],
          ];
    files.push([BOX_FILES.input, inputJson]);
    for (const [name, content] of files) {
      const file = path.join(jobDir, name);
      await writeFile(file, content, { mode: 0o400 });
      if (credentials !== undefined) await chown(file, credentials.uid, credentials.gid);
    }
    if (credentials !== undefined) await chown(jobDir, credentials.uid, credentials.gid);
    await chmod(jobDir, 0o500);
    return jobDir;
  }

  function guestCommand(job: SandboxJob): string[] {
    const limits = [prlimitPath, `--nproc=${maxProcesses}`, '--core=0', '--'];
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

  async function run(job: SandboxJob, runOptions: SandboxRunOptions = {}): Promise<SandboxResult> {
    const inputJson = assertValidJob(job);
    const empty = {
      stdout: '',
      stderr: '',
      stdoutTruncated: false,
      stderrTruncated: false,
      value: null,
      exitCode: null,
      signal: null,
    };
    if (runOptions.signal?.aborted === true) {
      return {
        ...empty,
        outcome: 'killed',
        durationMs: 0,
        errorMessage: 'the run was aborted before it started',
      };
    }

    let jobDir: string | undefined;
    try {
      try {
        jobDir = await prepareJobDir(job, inputJson);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        return {
          ...empty,
          outcome: 'sandbox_error',
          durationMs: 0,
          errorMessage: `could not prepare the job directory: ${message}`,
        };
      }
      const args = buildBwrapArgs({
        root: await getSystemRoot(),
        jobDir,
        workBytes,
        command: guestCommand(job),
      });
      const observed = await runBoxProcess({
        file: bwrapPath,
        args,
        ...(credentials === undefined ? {} : { credentials }),
        timeoutMs: job.limits.timeoutMs,
        maxOutputBytes: job.limits.maxOutputBytes,
        maxResultBytes: maxResultBytes + 64,
        settleMs: SETTLE_MS,
        ...(runOptions.signal === undefined ? {} : { signal: runOptions.signal }),
      });
      return interpret(job, observed, bwrapPath, maxResultBytes);
    } finally {
      if (jobDir !== undefined) await removeJobDir(jobDir);
    }
  }

  async function check(): Promise<SandboxCheck> {
    const problems: string[] = [];
    for (const [what, file] of [
      ['bubblewrap', bwrapPath],
      ['prlimit', prlimitPath],
      ['python', pythonPath],
      ['node', nodePath],
    ] as const) {
      try {
        await access(file, fsConstants.X_OK);
      } catch {
        problems.push(
          `${what} is not an executable at ${file}${what === 'bubblewrap' ? ' (apt-get install bubblewrap)' : ''}`,
        );
        continue;
      }
      if (what !== 'bubblewrap' && !isUnder(SYSTEM_TREE, file)) {
        problems.push(`${what} at ${file} is outside ${SYSTEM_TREE}, the only host tree bound into the box`);
      }
    }
    try {
      const info = await stat(scratchRoot);
      // bwrap runs as the sandbox user and must traverse the scratch root to bind the job dir.
      if (credentials !== undefined && info.uid !== credentials.uid && (info.mode & 0o001) === 0) {
        problems.push(`scratch root ${scratchRoot} is not searchable by uid ${credentials.uid}`);
      }
    } catch (error) {
      problems.push(
        `scratch root ${scratchRoot} is unusable: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    if (problems.length > 0) return { ok: false, problems };

    let jobDir: string | undefined;
    try {
      jobDir = await mkdtemp(path.join(scratchRoot, 'tandem-sandbox-check-'));
      if (credentials !== undefined) await chown(jobDir, credentials.uid, credentials.gid);
      await chmod(jobDir, 0o500);
      const observed = await runBoxProcess({
        file: bwrapPath,
        args: buildBwrapArgs({ root: await getSystemRoot(), jobDir, workBytes, command: ['/bin/true'] }),
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
      problems.push(
        `could not prepare a probe directory: ${error instanceof Error ? error.message : String(error)}`,
      );
    } finally {
      if (jobDir !== undefined) await removeJobDir(jobDir);
    }
    return { ok: problems.length === 0, problems };
  }

  return { name: 'bwrap', run, check };
}
