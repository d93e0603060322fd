/**
 * What one backend keeps on the host for its boxes: the cgroups it found, the box roots and the QuickJS
 * copy it made once, the boxes' directories, the cleaner that tears finished boxes down off the job's path,
 * and the sweep of what a runner killed hard left behind.
 */
import { chmod, chown, cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { describeBoxRoot, linkBoxRoot, type BoxBind, type BoxRoot } from './box-root.js';
import { detectCgroups, processExists, type CgroupSupport, type JobCgroup } from './cgroups.js';
import { QUICKJS_BOX_ROOT, rootMountPoints } from './domain/bwrap-args.js';
import type { BackendSettings } from './domain/settings.js';
import { CHMOD_PATH, RM_PATH, runTool } from './host-tools.js';
import { quickjsPackageDirs } from './quickjs-host.js';
import type { SandboxLanguage } from './types.js';

/** Names of boxes' host directories: the prefix, then the runner's pid (for the orphan sweep). */
export const BOX_DIR_PREFIX = 'tandem-sandbox-';

/** One box's host directories: `jobDir` holds `box` (read-only /box) and `work` (read-write /work). */
export interface JobDirs {
  jobDir: string;
  boxDir: string;
  workDir: string;
}

/** A backend's host resources; every lazy one is made once, on first use. */
export interface BoxHost {
  /** Per-job cgroups: the `cgroups` option, detected when absent, none when turned off or not root. */
  cgroups(): Promise<CgroupSupport>;
  /** A fresh, unique name for a job cgroup of this runner (`job-<pid>-...`, for the orphan sweep). */
  nextCgroupName(): string;
  /** Per language, the binds that make a box's file view. */
  rootBinds(): Promise<BoxRoot>;
  /** The host directory holding the QuickJS packages. */
  quickjsRoot(): Promise<string>;
  /** Removes, once per backend, what dead runners left behind; before this backend's first box. */
  sweepOrphansOnce(): Promise<void>;
  makeBoxDirs(prefix: string, boxFiles: ReadonlyArray<readonly [string, string | Buffer]>): Promise<JobDirs>;
  removeBoxDirs(dirs: JobDirs): Promise<void>;
  /** Queues a finished box's teardown: its cgroups, its tmpfs and its directories. */
  schedule(dirs: JobDirs | null, cgroup: JobCgroup | null): void;
  /** Waits until every queued teardown is done. */
  drain(): Promise<void>;
  /** Removes the box roots and the QuickJS copy (hard links and copies: the host's files stay as they are). */
  close(): Promise<void>;
}

/** A host without per-job cgroups: every job falls back to rlimits; `missing` says what that loses. */
export function noCgroups(why: string): CgroupSupport {
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

/** The host resources of one backend with `settings`, in the system's temporary directory `tmpdir`. */
export function createBoxHost(settings: BackendSettings, tmpdir: string): BoxHost {
  const { credentials, scratchRoot, workStorage } = settings;
  let boxCounter = 0;

  let cgroupSupport: Promise<CgroupSupport> | undefined;
  const cgroups = (): Promise<CgroupSupport> =>
    (cgroupSupport ??=
      settings.cgroups === 'off' || !settings.isRoot
        ? Promise.resolve(noCgroups(settings.cgroups === 'off' ? 'turned off' : 'the runner is not root'))
        : settings.cgroups !== undefined
          ? Promise.resolve(settings.cgroups)
          : detectCgroups());

  let boxRoot: Promise<BoxRoot> | undefined;
  const getBoxRoot = (): Promise<BoxRoot> =>
    (boxRoot ??= describeBoxRoot({ pythonPath: settings.pythonPath, nodePath: settings.nodePath }));
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
        const dir = await mkdtemp(path.join(tmpdir, `tandem-root-${process.pid}-`));
        await chmod(dir, 0o755);
        linkedRoots.push(dir);
        if (await linkBoxRoot(root[language], dir, rootMountPoints(language))) {
          return [{ hostPath: dir, boxPath: '/' }];
        }
        await rm(dir, { recursive: true, force: true });
        return root[language];
      };
      return { python: await pick('python'), javascript: await pick('javascript') };
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
      const root = await mkdtemp(path.join(tmpdir, `tandem-qjs-${process.pid}-`));
      for (const item of await quickjsPackageDirs()) {
        const target = path.join(root, path.relative(QUICKJS_BOX_ROOT, item.boxPath));
        await cp(item.hostPath, target, { recursive: true, dereference: true });
      }
      await runTool(CHMOD_PATH, ['-R', 'a+rX,go-w', '--', root]);
      return root;
    })());

  /**
   * Makes a box's directories: `box` (wrapper now; code and input when the job arrives) and an empty `work`
   * that only the sandbox user can enter. The tmpfs on `work` (root runner) is mounted by the box's start.
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
  const queue: Array<{ dirs: JobDirs | null; cgroup: JobCgroup | null }> = [];
  let running: Promise<void> | null = null;
  const round = async (): Promise<void> => {
    while (queue.length > 0) {
      const batch = queue.splice(0, 64);
      await Promise.all(batch.map((item) => item.cgroup?.destroy()));
      const dirs = batch.flatMap((item) => (item.dirs === null ? [] : [item.dirs]));
      if (workStorage === 'tmpfs' && dirs.length > 0) {
        // Exit status ignored: a box that failed before its mount has nothing to detach.
        await runTool(settings.umountPath, ['-l', '-n', '--', ...dirs.map((item) => item.workDir)]).catch(
          () => undefined,
        );
      }
      await Promise.all(dirs.map((item) => removeBoxDirs(item).catch(() => undefined)));
    }
    running = null;
  };
  const schedule = (dirs: JobDirs | null, cgroup: JobCgroup | null): void => {
    queue.push({ dirs, cgroup });
    running ??= round();
  };

  /**
   * Once per backend, before its first box: removes what a runner killed hard (SIGKILL, a crash) left
   * behind — boxes' tmpfs mounts and directories under the scratch root, and job cgroups — for every
   * runner pid that no longer exists. The names carry the runner's pid for this.
   */
  let orphanSweep: Promise<void> | undefined;
  const sweepOrphansOnce = (): Promise<void> =>
    (orphanSweep ??= (async () => {
      await (await cgroups()).sweepOrphans().catch(() => 0);
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
      for (const name of await readdir(tmpdir).catch(() => [])) {
        const match = /^tandem-(?:qjs|root)-(\d+)-/.exec(name);
        if (match !== null && !processExists(Number(match[1]))) {
          await rm(path.join(tmpdir, name), { recursive: true, force: true }).catch(() => undefined);
        }
      }
      for (const name of stale) {
        const jobDir = path.join(scratchRoot, name);
        schedule({ jobDir, boxDir: path.join(jobDir, 'box'), workDir: path.join(jobDir, 'work') }, null);
      }
    })());

  return {
    cgroups,
    nextCgroupName: () => `job-${process.pid}-${(boxCounter += 1)}-${Date.now()}`,
    rootBinds: getRootBinds,
    quickjsRoot: getQuickjsRoot,
    sweepOrphansOnce,
    makeBoxDirs,
    removeBoxDirs,
    schedule,
    async drain() {
      while (running !== null) await running;
    },
    async close() {
      // Hard links and directories only: removing them leaves the host's files as they are.
      for (const dir of linkedRoots) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      if (quickjsRoot !== undefined) {
        const root = await quickjsRoot.catch(() => null);
        if (root !== null) await rm(root, { recursive: true, force: true }).catch(() => undefined);
      }
    },
  };
}
