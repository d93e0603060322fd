/**
 * The command lines of a box: bwrap's arguments, the guest command inside, how the runner launches it, the
 * wrapper files in /box and the tmpfs of its working directory. Pure: paths and limits in, argv out.
 */
import { bindArgs, type BoxBind } from '../box-root.js';
import { BOX_DIR, BOX_FILES, PYTHON_WRAPPER, READY_MARKER, WORK_DIR } from '../guest-wrappers.js';
import { QUICKJS_HOST, QUICKJS_NODE_FLAGS } from '../quickjs-host.js';
import type { SandboxLanguage } from '../types.js';
import type { BackendSettings } from './settings.js';

/** Where the QuickJS packages are bound inside a JavaScript box. */
export const QUICKJS_BOX_ROOT = '/qjs';
/** The descriptor bwrap reads the seccomp program from (the first of the box's extra inputs). */
export const SECCOMP_FD = 5;

/** The parameters of one box's bwrap command line. */
export interface BwrapArgsParams {
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
}

/**
 * The bwrap argv for one box. Namespaces: all (user, pid, net, ipc, uts, cgroup, mount); no network
 * device but loopback. Filesystem: an empty read-only root holding only the language's interpreter, its
 * loader and libraries (and Python's standard library) read-only (`box-root.ts`), fresh /proc and /dev, the
 * job's box dir read-only at /box, the job's own working directory read-write at /work (the cwd), and a
 * size-capped tmpfs at /tmp. Environment: cleared, then four fixed variables.
 */
export function buildBwrapArgs(params: BwrapArgsParams): string[] {
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

/**
 * The per-process rlimits of a box, as `prlimit` options: backstops behind the cgroups and the supervisor.
 * They can be set outside the box (they count per process). RLIMIT_NPROC cannot: set outside the box's
 * user namespace it would count every process of the sandbox user on the host, across jobs.
 */
export function processLimitOptions(settings: Pick<BackendSettings, 'fileBytes' | 'cpuSeconds'>): string[] {
  return ['--core=0', `--fsize=${settings.fileBytes}`, `--cpu=${settings.cpuSeconds}`];
}

/** The settings the guest command depends on. */
export type GuestCommandSettings = Pick<
  BackendSettings,
  | 'isolated'
  | 'pythonPath'
  | 'nodePath'
  | 'prlimitPath'
  | 'maxProcesses'
  | 'fileBytes'
  | 'cpuSeconds'
  | 'execFilter'
>;

/**
 * The interpreter and its wrapper, as started inside the box (or, without one, on the host). `dirs` are the
 * box's host directories; `qjsRoot` is where the QuickJS packages are for a box-less JavaScript guest.
 */
export function guestCommand(
  settings: GuestCommandSettings,
  language: SandboxLanguage,
  dirs: { boxDir: string; workDir: string },
  qjsRoot: string,
): string[] {
  const { isolated } = settings;
  // Inside a bwrap box the job's directories are /box and /work; without one, their host paths.
  const boxDir = isolated ? BOX_DIR : dirs.boxDir;
  const workDir = isolated ? WORK_DIR : dirs.workDir;
  if (language === 'python') {
    // -I: ignore PYTHON* variables and user site; -S: no site module (faster start, no site-packages).
    // The wrapper sets the same rlimits itself before any guest code (no prlimit process).
    return [
      settings.pythonPath,
      '-I',
      '-S',
      `${boxDir}/${BOX_FILES.pythonWrapper}`,
      boxDir,
      // Without a user namespace RLIMIT_NPROC would count every process of the uid on the host.
      String(isolated ? settings.maxProcesses : -1),
      String(settings.fileBytes),
      String(settings.cpuSeconds),
      settings.execFilter === null ? '-' : `${boxDir}/${BOX_FILES.execFilter}`,
    ];
  }
  // JavaScript runs in QuickJS (WebAssembly) hosted by Node: the host caps the engine's memory itself, and
  // the memory cgroup bounds the whole box. RLIMIT_AS would kill V8 at start-up. In a bwrap box the runner
  // sets the rlimits on bwrap's held child (no prlimit in the box); without a box prlimit runs in front.
  return [
    ...(isolated ? [] : [settings.prlimitPath, ...processLimitOptions(settings), '--']),
    settings.nodePath,
    ...QUICKJS_NODE_FLAGS,
    `${boxDir}/${BOX_FILES.javascriptHost}`,
    isolated ? QUICKJS_BOX_ROOT : qjsRoot,
    boxDir,
    workDir,
  ];
}

/**
 * The binary the runner spawns for a box and its arguments: the guest command itself without a box; for a
 * JavaScript box `prlimit` exec'ing bwrap (the per-process rlimits, inherited by all the box starts: an exec,
 * no process of its own); for a Python box bwrap (its wrapper sets its own rlimits).
 */
export function boxLaunch(
  settings: Pick<
    BackendSettings,
    'isolated' | 'bwrapPath' | 'prlimitPath' | 'pythonPath' | 'fileBytes' | 'cpuSeconds'
  >,
  language: SandboxLanguage,
  command: readonly string[],
  bwrapArgs: readonly string[],
): { file: string; args: string[] } {
  if (!settings.isolated) return { file: command[0] ?? settings.pythonPath, args: command.slice(1) };
  if (language === 'javascript') {
    return {
      file: settings.prlimitPath,
      args: [...processLimitOptions(settings), '--', settings.bwrapPath, ...bwrapArgs],
    };
  }
  return { file: settings.bwrapPath, args: [...bwrapArgs] };
}

/** The wrapper files a box of `language` gets in /box when it starts (its code and input come with the job). */
export function wrapperFiles(
  language: SandboxLanguage,
  execFilter: Buffer | null,
): Array<readonly [string, string | Buffer]> {
  if (language === 'javascript') return [[BOX_FILES.javascriptHost, QUICKJS_HOST]];
  return [
    [BOX_FILES.pythonWrapper, PYTHON_WRAPPER],
    ...(execFilter === null ? [] : [[BOX_FILES.execFilter, execFilter] as const]),
  ];
}

/** Mount points a box's linked root must hold for what bwrap mounts on top of it. */
export function rootMountPoints(language: SandboxLanguage): string[] {
  return [
    '/proc',
    '/dev',
    '/tmp',
    BOX_DIR,
    WORK_DIR,
    ...(language === 'javascript' ? [QUICKJS_BOX_ROOT] : []),
  ];
}

/** The `mount -o` options of a job's tmpfs working directory, owned by `owner`. */
export function tmpfsOptions(
  settings: Pick<BackendSettings, 'workBytes' | 'workInodes'>,
  owner: { uid: number; gid: number },
): string {
  return [
    `size=${settings.workBytes}`,
    `nr_inodes=${settings.workInodes}`,
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
 * The command of the health probe's box: the interpreter itself writes the ready marker, since the box
 * holds nothing else to run.
 */
export function probeCommand(pythonPath: string): string[] {
  return [pythonPath, '-I', '-S', '-c', `import os; os.write(3, ${JSON.stringify(READY_MARKER)}.encode())`];
}
