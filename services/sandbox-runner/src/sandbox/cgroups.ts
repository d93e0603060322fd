import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { constants, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Per-job limits a cgroup enforces from outside the guest. */
export interface CgroupLimits {
  memoryBytes: number;
  maxProcesses: number;
}

/** What a finished job's cgroup recorded. */
export interface CgroupStats {
  /** Highest memory use of the job, when the kernel reports it. */
  peakMemoryBytes: number | null;
  /** Whether the kernel's OOM killer ended a process of the job (its memory limit was hit). */
  oomKilled: boolean;
}

/** One job's cgroup(s): joining the box's processes, stats after the run, and removal. */
export interface JobCgroup {
  /**
   * Moves these processes (host pids) into the job's cgroup(s). The runner calls it while bwrap's first
   * child is held, before the interpreter starts, so everything of the job is inside before it runs.
   */
  join(pids: readonly number[]): Promise<void>;
  /**
   * Changes the memory limit of a job whose box is already running (a warm box gets its job's limit when
   * the job arrives). Rejects when the box already uses more than the new limit.
   */
  setMemoryLimit(bytes: number): Promise<void>;
  stats(): Promise<CgroupStats>;
  /** Kills every process still in the cgroup(s) and removes them; never throws. */
  destroy(): Promise<void>;
}

/** Which per-job cgroups this host gives the runner. */
export interface CgroupSupport {
  readonly kind: 'v1' | 'v2' | 'none';
  /** Limits that cannot be enforced by a cgroup here, and why (empty when all can). */
  readonly missing: readonly string[];
  create(job: string, limits: CgroupLimits): Promise<JobCgroup>;
  /**
   * Kills and removes the job cgroups (`job-<pid>-...`) of runner processes that no longer exist: what a
   * runner killed with SIGKILL left behind. Never throws.
   */
  sweepOrphans(): Promise<number>;
}

const PARENT = 'tandem-sandbox';

async function writable(path: string): Promise<boolean> {
  try {
    await access(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

// Per-job control files are kernel pseudo-files that answer at once: read and written synchronously, since
// each promise-based call costs several thread-pool round trips, which showed up in every job's latency.

function readNumber(path: string): number | null {
  try {
    const value = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(value) ? value : null;
  } catch {
    return null;
  }
}

function readKeyed(path: string, key: string): number | null {
  try {
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      const [name, value] = line.trim().split(/\s+/);
      if (name === key && value !== undefined) return Number(value);
    }
  } catch {
    // Not reported by this kernel.
  }
  return null;
}

function pidsIn(procsFile: string): number[] {
  try {
    return readFileSync(procsFile, 'utf8')
      .split('\n')
      .map((line) => Number(line.trim()))
      .filter((pid) => Number.isInteger(pid) && pid > 0);
  } catch {
    return [];
  }
}

/** Whether a process with this pid exists (EPERM: it does, owned by someone else). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error instanceof Error && 'code' in error && error.code === 'EPERM';
  }
}

/** Job cgroup names under the parents whose runner pid is gone. */
function orphanNames(parents: readonly string[]): string[] {
  const names = new Set<string>();
  for (const parent of parents) {
    let entries: string[] = [];
    try {
      entries = readdirSync(parent);
    } catch {
      continue;
    }
    for (const name of entries) {
      const match = /^job-(\d+)-/.exec(name);
      if (match !== null && !processExists(Number(match[1]))) names.add(name);
    }
  }
  return [...names];
}

/**
 * Writes each pid into each `cgroup.procs` file (one pid per write, as the kernel reads them). Not
 * synchronous, unlike the other control files: a migration waits for an RCU grace period in the kernel,
 * which would stall the runner's event loop for every box.
 */
async function joinAll(procsFiles: readonly string[], pids: readonly number[]): Promise<void> {
  for (const file of procsFiles) for (const pid of pids) await writeFile(file, String(pid));
}

/** Writes a control file that may not exist on this kernel (swap accounting, cgroup.kill). */
function tryWrite(path: string, value: string): void {
  try {
    writeFileSync(path, value);
  } catch {
    // Not offered here.
  }
}

/** Kills what is left in the given cgroups (a daemon that left the process group included), then removes them. */
async function sweep(dirs: readonly string[]): Promise<void> {
  for (let round = 0; round < 50; round += 1) {
    let left = 0;
    for (const dir of dirs) {
      for (const pid of pidsIn(join(dir, 'cgroup.procs'))) {
        left += 1;
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
    }
    if (left === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  for (const dir of dirs) {
    for (let attempt = 0; attempt < 20; attempt += 1) {
      try {
        rmdirSync(dir);
        break;
      } catch (error) {
        if (error instanceof Error && 'code' in error && error.code === 'ENOENT') break;
        // EBUSY while the last process is being reaped.
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  }
}

/**
 * Finds per-job cgroups this runner can create: cgroup v2 with the memory and pids controllers, else the
 * v1 memory and pids hierarchies (this machine's kind has v1 controllers only). Without either (not root,
 * or no writable hierarchy) the kind is `none` and `missing` says which limits are not enforced.
 */
export async function detectCgroups(root = '/sys/fs/cgroup'): Promise<CgroupSupport> {
  const controllers = await readFile(join(root, 'cgroup.controllers'), 'utf8').catch(() => '');
  if (/\bmemory\b/.test(controllers) && /\bpids\b/.test(controllers) && (await writable(root))) {
    const parent = join(root, PARENT);
    try {
      await mkdir(parent, { recursive: true });
      await writeFile(join(root, 'cgroup.subtree_control'), '+memory +pids').catch(() => undefined);
      await writeFile(join(parent, 'cgroup.subtree_control'), '+memory +pids');
      return v2(parent);
    } catch {
      // Fall through to v1.
    }
  }
  const memory = join(root, 'memory');
  const pids = join(root, 'pids');
  if ((await writable(memory)) && (await writable(pids))) {
    try {
      await mkdir(join(memory, PARENT), { recursive: true });
      await mkdir(join(pids, PARENT), { recursive: true });
      return v1(join(memory, PARENT), join(pids, PARENT));
    } catch {
      // Fall through to none.
    }
  }
  return {
    kind: 'none',
    missing: [
      'memory cgroup (the memory limit is RLIMIT_AS for Python and a V8 heap cap for JavaScript only)',
      'pids cgroup (the process limit is RLIMIT_NPROC, which does not bind root and counts across jobs)',
    ],
    create: () => Promise.reject(new Error('no cgroups on this host')),
    sweepOrphans: () => Promise.resolve(0),
  };
}

function v1(memoryParent: string, pidsParent: string): CgroupSupport {
  return {
    kind: 'v1',
    missing: [],
    async sweepOrphans() {
      const names = orphanNames([memoryParent, pidsParent]);
      for (const name of names) await sweep([join(memoryParent, name), join(pidsParent, name)]);
      return names.length;
    },
    async create(job, limits) {
      const memory = join(memoryParent, job);
      const pids = join(pidsParent, job);
      mkdirSync(memory);
      mkdirSync(pids);
      try {
        writeFileSync(join(memory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
        // No swap beyond the limit where the kernel accounts it (absent without swap accounting).
        tryWrite(join(memory, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes));
        writeFileSync(join(pids, 'pids.max'), String(limits.maxProcesses));
      } catch (error) {
        await sweep([memory, pids]);
        throw error;
      }
      let current = limits.memoryBytes;
      return {
        join: (members) => joinAll([join(memory, 'cgroup.procs'), join(pids, 'cgroup.procs')], members),
        async setMemoryLimit(bytes) {
          if (bytes === current) return;
          const limit = join(memory, 'memory.limit_in_bytes');
          const withSwap = join(memory, 'memory.memsw.limit_in_bytes');
          // v1 keeps limit <= memsw.limit: raise memsw first, lower it last.
          if (bytes > current) tryWrite(withSwap, String(bytes));
          writeFileSync(limit, String(bytes));
          if (bytes < current) tryWrite(withSwap, String(bytes));
          current = bytes;
        },
        async stats() {
          const failures = readNumber(join(memory, 'memory.failcnt')) ?? 0;
          const oomKills = readKeyed(join(memory, 'memory.oom_control'), 'oom_kill');
          return {
            peakMemoryBytes: readNumber(join(memory, 'memory.max_usage_in_bytes')),
            oomKilled: oomKills !== null ? oomKills > 0 : failures > 0,
          };
        },
        destroy: () => sweep([memory, pids]),
      };
    },
  };
}

function v2(parent: string): CgroupSupport {
  return {
    kind: 'v2',
    missing: [],
    async sweepOrphans() {
      const names = orphanNames([parent]);
      for (const name of names) {
        tryWrite(join(parent, name, 'cgroup.kill'), '1');
        await sweep([join(parent, name)]);
      }
      return names.length;
    },
    async create(job, limits) {
      const dir = join(parent, job);
      mkdirSync(dir);
      try {
        writeFileSync(join(dir, 'memory.max'), String(limits.memoryBytes));
        tryWrite(join(dir, 'memory.swap.max'), '0');
        writeFileSync(join(dir, 'pids.max'), String(limits.maxProcesses));
      } catch (error) {
        await sweep([dir]);
        throw error;
      }
      return {
        join: (members) => joinAll([join(dir, 'cgroup.procs')], members),
        async setMemoryLimit(bytes) {
          writeFileSync(join(dir, 'memory.max'), String(bytes));
        },
        async stats() {
          return {
            peakMemoryBytes: readNumber(join(dir, 'memory.peak')),
            oomKilled: (readKeyed(join(dir, 'memory.events'), 'oom_kill') ?? 0) > 0,
          };
        },
        async destroy() {
          tryWrite(join(dir, 'cgroup.kill'), '1');
          await sweep([dir]);
        },
      };
    },
  };
}
