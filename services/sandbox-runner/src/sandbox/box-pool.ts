/**
 * The box pool: starts boxes before their job (a warm pool of `poolSize` per language, or on demand) —
 * directories, cgroup, tmpfs, then bwrap with the interpreter waiting on its go channel — and hands them out.
 */
import type { BoxBind } from './box-root.js';
import { BOX_DIR_PREFIX, type BoxHost, type JobDirs } from './box-host.js';
import { holdFds, startBox, type BoxProcess } from './box-process.js';
import type { JobCgroup } from './cgroups.js';
import {
  QUICKJS_BOX_ROOT,
  SECCOMP_FD,
  boxLaunch,
  buildBwrapArgs,
  guestCommand,
  tmpfsOptions,
  wrapperFiles,
} from './domain/bwrap-args.js';
import type { BackendSettings } from './domain/settings.js';
import { READY_MARKER } from './guest-wrappers.js';
import { describeError, runTool } from './host-tools.js';
import { createWarmPool, type PoolableBox, type WarmPool } from './pool.js';
import type { SandboxLanguage } from './types.js';

/** How long to wait for the box's pipes to close after it exited or was killed. */
export const SETTLE_MS = 2_000;

/** A sandbox started for one job (maybe ahead of it): its directories, cgroup and process tree. */
export interface Box extends PoolableBox {
  readonly language: SandboxLanguage;
  readonly dirs: JobDirs | null;
  readonly cgroup: JobCgroup | null;
  readonly process: BoxProcess | null;
  /** Why the box could not be prepared (directories, cgroup), when it could not. */
  readonly setupError: string | null;
}

/** The warm pools of one backend, one per language. */
export interface BoxPools {
  /** A box for `language`: a warm one when there is one, else one started now. */
  acquire(language: SandboxLanguage): Promise<Box>;
  /** Starts a replacement for a box handed out. */
  refill(language: SandboxLanguage): void;
  /** Starts the warm boxes of every language. */
  fill(): void;
  /** Discards the warm boxes. */
  close(): Promise<void>;
}

/** The box pools of one backend with `settings`, on the resources of `host`. */
export function createBoxPools(settings: BackendSettings, host: BoxHost): BoxPools {
  const { credentials, isolated, seccomp } = settings;
  const readyMarker = Buffer.from(READY_MARKER, 'utf8');

  /** A box that could not be prepared: it reports why when its job runs. */
  function failedBox(
    language: SandboxLanguage,
    setupError: string,
    dirs: JobDirs | null,
    cgroup: JobCgroup | null,
  ): Box {
    host.schedule(dirs, cgroup);
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
      await host.sweepOrphansOnce();
      dirs = await host.makeBoxDirs(
        `${BOX_DIR_PREFIX}${process.pid}-`,
        wrapperFiles(language, settings.execFilter),
      );
    } catch (error) {
      return failedBox(language, `could not prepare the job directory: ${describeError(error)}`, dirs, null);
    }
    const cgroups = await host.cgroups();
    if (cgroups.kind !== 'none' && credentials !== undefined) {
      try {
        cgroup = await cgroups.create(host.nextCgroupName(), {
          memoryBytes: settings.defaultMemoryMb * 1024 * 1024,
          // bwrap's own processes count too.
          maxProcesses: settings.maxProcesses + 4,
        });
      } catch (error) {
        return failedBox(language, `could not create the job's cgroup: ${describeError(error)}`, dirs, null);
      }
    }
    let qjsRoot = QUICKJS_BOX_ROOT;
    let binds: BoxBind[] = [];
    if (language === 'javascript') {
      try {
        const hostRoot = await host.quickjsRoot();
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
      if (isolated) root = (await host.rootBinds())[language];
      // On the host, by the runner: the job's working directory gets its own size-capped tmpfs.
      if (settings.workStorage === 'tmpfs' && credentials !== undefined) {
        await runTool(settings.mountPath, [
          '-n',
          '-t',
          'tmpfs',
          '-o',
          tmpfsOptions(settings, credentials),
          'tandem-sandbox',
          dirs.workDir,
        ]);
      }
    } catch (error) {
      return failedBox(language, `could not prepare the box: ${describeError(error)}`, dirs, cgroup);
    }
    const command = guestCommand(settings, language, dirs, qjsRoot);
    const inputs = seccomp === null ? [] : [seccomp];
    // A JavaScript box's rlimits (Python's wrapper sets its own): the per-process ones by `prlimit` exec'ing
    // bwrap (`boxLaunch`). The process limit only where no pids cgroup binds: set on bwrap's held child,
    // inside the box's user namespace (see `join`).
    const nprocOnChild = isolated && language === 'javascript' && cgroup === null;
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
        await runTool(
          settings.prlimitPath,
          [`--pid=${child}`, `--nproc=${settings.maxProcesses}`],
          credentials,
        );
      }
    };
    const needsJoin = cgroup !== null || nprocOnChild;
    const bwrapArgs = buildBwrapArgs({
      root,
      boxDir: dirs.boxDir,
      workDir: dirs.workDir,
      tmpBytes: settings.tmpBytes,
      seccompFd: seccomp === null ? null : SECCOMP_FD,
      binds,
      ...(needsJoin ? { hold: holdFds(inputs.length) } : {}),
      command,
    });
    const boxProcess = startBox({
      ...boxLaunch(settings, language, command, bwrapArgs),
      // Spawned as the sandbox user by the runner itself (no setpriv, no launcher shell): started by root,
      // bwrap would run the guest as host root (its --uid only maps inside the namespace).
      ...(credentials === undefined ? {} : { credentials }),
      ...(needsJoin ? { attach: { when: isolated ? ('held' as const) : ('ready' as const), join } } : {}),
      endOnReport: language === 'javascript',
      // bwrap changes into /work itself (--chdir); without a box the guest starts in its working directory.
      cwd: isolated ? '/' : dirs.workDir,
      inputs,
      maxResultBytes: settings.maxResultBytes + 64,
      startOutputBytes: 64 * 1024,
      startTimeoutMs: settings.startTimeoutMs,
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
        host.schedule(ownDirs, ownCgroup);
      },
    };
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
    python: createWarmPool({ size: settings.poolSize, start: () => startPreparedBox('python') }),
    javascript: createWarmPool({ size: settings.poolSize, start: () => startPreparedBox('javascript') }),
  };

  return {
    acquire: (language) => pools[language].acquire(),
    refill: (language) => pools[language].refill(),
    fill() {
      pools.python.fill();
      pools.javascript.fill();
    },
    async close() {
      await Promise.all([pools.python.close(), pools.javascript.close()]);
    },
  };
}
