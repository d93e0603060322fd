/**
 * The bubblewrap backend's settings: its options, their defaults, and what follows from them on a given host
 * (root or not, the architecture). Pure: the host facts are passed in.
 */
import type { CgroupSupport } from '../cgroups.js';
import { SECCOMP_ARCHES, execDenyFilter, seccompFilter } from '../seccomp.js';

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

/** The defaults of `BwrapBackendOptions`, which work on Debian 12. */
export const DEFAULTS = {
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
  defaultMemoryMb: 1024,
  cpuSeconds: 610,
  startTimeoutMs: 30_000,
  poolSize: 0,
  sandboxUser: { uid: 65534, gid: 65534 },
} as const;

/** What the settings depend on of the host the backend runs on. */
export interface HostFacts {
  /** The runner's uid (`process.getuid()`); undefined where there is none. */
  uid: number | undefined;
  /** The system's temporary directory (`os.tmpdir()`), the default scratch root. */
  tmpdir: string;
  /** `process.arch`: which syscall filters exist. */
  arch: string;
}

/** Every option with its default applied, and what follows from them on the host. */
export interface BackendSettings {
  readonly bwrapPath: string;
  readonly pythonPath: string;
  readonly nodePath: string;
  readonly prlimitPath: string;
  readonly mountPath: string;
  readonly umountPath: string;
  readonly scratchRoot: string;
  readonly workBytes: number;
  readonly workInodes: number;
  readonly tmpBytes: number;
  readonly maxCollectEntries: number;
  readonly maxResultBytes: number;
  readonly maxProcesses: number;
  readonly defaultMemoryMb: number;
  readonly cpuSeconds: number;
  readonly startTimeoutMs: number;
  readonly poolSize: number;
  /** The `cgroups` option as given (resolved, and detected when absent, once per backend by its host). */
  readonly cgroups: CgroupSupport | 'off' | undefined;
  /** Whether the runner is root: only then can it have cgroups, mount a tmpfs and drop to the sandbox user. */
  readonly isRoot: boolean;
  /** False for the `process` backend (`isolation: 'none'`): no bwrap box around the guest. */
  readonly isolated: boolean;
  /** The bwrap syscall filter every guest runs under, or null (turned off, or no box). */
  readonly seccomp: Buffer | null;
  /** The exec filter the Python wrapper installs on itself, or null on an architecture without one. */
  readonly execFilter: Buffer | null;
  /**
   * Host uid/gid bwrap (or the guest) is started as: the sandbox user when the runner is root, else none
   * (the runner's own). Started by root, bwrap would run the guest as host root (its --uid only maps inside
   * the namespace).
   */
  readonly credentials: { uid: number; gid: number } | undefined;
  readonly workStorage: 'tmpfs' | 'directory';
  /** RLIMIT_FSIZE of every box process. */
  readonly fileBytes: number;
}

/** Whether `arch` has known syscall numbers (and so syscall filters). */
export const isKnownArch = (arch: string): boolean => SECCOMP_ARCHES.some((name) => name === arch);

/** Applies the defaults and derives what follows on `host`. Throws for `seccomp` on an unknown architecture. */
export function resolveSettings(options: BwrapBackendOptions, host: HostFacts): BackendSettings {
  const isRoot = host.uid === 0;
  const isolated = options.isolation !== 'none';
  const workBytes = options.workBytes ?? DEFAULTS.workBytes;
  const tmpBytes = options.tmpBytes ?? DEFAULTS.tmpBytes;
  const seccomp = options.seccomp === 'off' || !isolated ? null : seccompFilter(host.arch);
  const credentials = isRoot ? (options.sandboxUser ?? DEFAULTS.sandboxUser) : undefined;
  // Mounting needs root; without it the working directory is a plain directory.
  const workStorage = options.workStorage ?? (credentials === undefined ? 'directory' : 'tmpfs');
  return {
    bwrapPath: options.bwrapPath ?? DEFAULTS.bwrapPath,
    pythonPath: options.pythonPath ?? DEFAULTS.pythonPath,
    nodePath: options.nodePath ?? DEFAULTS.nodePath,
    prlimitPath: options.prlimitPath ?? DEFAULTS.prlimitPath,
    mountPath: options.mountPath ?? DEFAULTS.mountPath,
    umountPath: options.umountPath ?? DEFAULTS.umountPath,
    scratchRoot: options.scratchRoot ?? host.tmpdir,
    workBytes,
    workInodes: options.workInodes ?? DEFAULTS.workInodes,
    tmpBytes,
    maxCollectEntries: options.maxCollectEntries ?? DEFAULTS.maxCollectEntries,
    maxResultBytes: options.maxResultBytes ?? DEFAULTS.maxResultBytes,
    maxProcesses: options.maxProcesses ?? DEFAULTS.maxProcesses,
    defaultMemoryMb: options.defaultMemoryMb ?? DEFAULTS.defaultMemoryMb,
    cpuSeconds: options.cpuSeconds ?? DEFAULTS.cpuSeconds,
    startTimeoutMs: options.startTimeoutMs ?? DEFAULTS.startTimeoutMs,
    poolSize: options.poolSize ?? DEFAULTS.poolSize,
    cgroups: options.cgroups,
    isRoot,
    isolated,
    seccomp,
    // Python installs it on itself before any guest code: no program can be started from its box. Not on an
    // architecture without known syscall numbers, where only the weaker `process` backend can run at all.
    execFilter: seccomp !== null || isKnownArch(host.arch) ? execDenyFilter(host.arch) : null,
    credentials,
    workStorage,
    // Backstops of every box: processes (where no pids cgroup binds), no core files, file size, CPU time (the
    // wall clock is the supervisor's; this catches a runner that stopped watching). A plain working directory
    // has no size of its own: no single file may outgrow the cap. On tmpfs the mounts' sizes bind first; the
    // file-size limit only backs them up.
    fileBytes: workStorage === 'directory' ? workBytes : Math.max(workBytes, tmpBytes) + 1024 * 1024,
  };
}
