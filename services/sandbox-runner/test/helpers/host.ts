import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

import { describe, test, type TestContext } from 'vitest';

import { detectCgroups } from '../../src/sandbox/cgroups.js';

/**
 * What a sandbox suite can need of its host. Each can be provided (CI installs bubblewrap and runs as root
 * on a host with cgroups), unlike the CPU architecture, which a test that depends on it skips by itself.
 */
export type HostCapability = 'bubblewrap' | 'root' | 'cgroups';

/** The bubblewrap binary every suite and the backend's default use. */
export const BWRAP_PATH = '/usr/bin/bwrap';

/**
 * Whether this run is CI's (`CI=true` or `CI=1`, as `.ci/run` and most CI systems set it). There a missing
 * capability is a broken CI host, so a gated test fails instead of skipping.
 */
export const IN_CI = /^(?:1|true)$/i.test(process.env['CI'] ?? '');

const IS_ROOT = process.getuid?.() === 0;
/** The uid/gid the backend runs bubblewrap as when the runner is root (its default sandbox user). */
const SANDBOX_IDS = IS_ROOT ? { uid: 65534, gid: 65534 } : {};

/**
 * Why bubblewrap cannot start a box here, or null when it can: the binary exists and, run as the user the
 * backend runs it as, it can make the user, pid, net and mount namespaces of a box (a host may ship bwrap
 * but forbid unprivileged user namespaces).
 */
function bubblewrapProblem(): string | null {
  try {
    accessSync(BWRAP_PATH, constants.X_OK);
  } catch {
    return `bubblewrap: ${BWRAP_PATH} is not installed (apt-get install -y bubblewrap)`;
  }
  const probe = spawnSync(
    BWRAP_PATH,
    ['--unshare-all', '--unshare-user', '--die-with-parent', '--ro-bind', '/', '/', '--', '/bin/true'],
    { env: {}, cwd: '/', timeout: 10_000, encoding: 'utf8', ...SANDBOX_IDS },
  );
  if (probe.error !== undefined)
    return `bubblewrap: ${BWRAP_PATH} could not be started (${probe.error.message})`;
  if (probe.status !== 0) {
    const detail = probe.stderr.trim() === '' ? `exit ${String(probe.status)}` : probe.stderr.trim();
    return `bubblewrap: ${BWRAP_PATH} cannot make a box's namespaces here (${detail})`;
  }
  return null;
}

async function cgroupsProblem(): Promise<string | null> {
  if (!IS_ROOT) return 'cgroups: per-job cgroups need a root runner (the tests run as a non-root user)';
  const support = await detectCgroups();
  if (support.kind !== 'none') return null;
  return (
    'cgroups: no writable memory and pids controllers (neither cgroup v2 with memory and pids enabled at ' +
    '/sys/fs/cgroup nor writable v1 hierarchies at /sys/fs/cgroup/memory and /sys/fs/cgroup/pids)'
  );
}

const PROBES: Record<HostCapability, () => Promise<string | null>> = {
  bubblewrap: () => Promise.resolve(bubblewrapProblem()),
  root: () =>
    Promise.resolve(IS_ROOT ? null : `root: the tests run as uid ${String(process.getuid?.())}, not 0`),
  cgroups: cgroupsProblem,
};

const probed = new Map<HostCapability, Promise<string | null>>();

/** Why each of `needs` is missing on this host (empty when all are present); each probe runs once. */
export async function missingCapabilities(needs: readonly HostCapability[]): Promise<string[]> {
  const problems = await Promise.all(
    needs.map((need) => {
      let problem = probed.get(need);
      if (problem === undefined) {
        problem = PROBES[need]();
        probed.set(need, problem);
      }
      return problem;
    }),
  );
  return problems.filter((problem): problem is string => problem !== null);
}

type TestBody = (context: TestContext) => unknown;

/**
 * Registers tests by what the host has: with every capability present they run; with one missing they are
 * skipped with the reason, or under CI (`IN_CI`) they fail with a message naming what is missing. Made once
 * per file before its tests are declared (`const gate = await hostGate([...])`).
 */
export interface HostGate {
  /** Why the capabilities are missing (empty when the gated tests run). */
  readonly missing: readonly string[];
  /**
   * A `describe` whose body (hooks included) is registered only when the host has everything; otherwise its
   * tests are registered as skipped (the reason in the suite's name), or under CI replaced by one failing test.
   */
  describe(name: string, body: () => void): void;
  /** A `test` gated the same way: skipped with the reason as its note, or failing under CI. */
  test(name: string, body: TestBody, timeout?: number): void;
}

/** What a gate does with its tests: run them, skip them with a reason, or fail them (CI). Pure. */
export type GateMode = { kind: 'run' } | { kind: 'skip'; reason: string } | { kind: 'fail'; message: string };

/** The decision for tests that need what `missing` lacks, in CI or not. Pure. */
export function gateMode(missing: readonly string[], inCi: boolean): GateMode {
  if (missing.length === 0) return { kind: 'run' };
  if (!inCi) return { kind: 'skip', reason: missing.join('; ') };
  return {
    kind: 'fail',
    message:
      `CI=true and this host lacks what the test needs: ${missing.join('; ')}. ` +
      'CI must provide it (see .ci/run); without CI=true the test is skipped instead.',
  };
}

/** The gate for `needs` on this host (probed once per capability and process). */
export async function hostGate(needs: readonly HostCapability[]): Promise<HostGate> {
  const missing = await missingCapabilities(needs);
  const mode = gateMode(missing, IN_CI);
  switch (mode.kind) {
    case 'run':
      return {
        missing,
        describe: (name, body) => describe(name, body),
        test: (name, body, timeout) => test(name, body, timeout),
      };
    case 'fail': {
      const fail = (): never => {
        throw new Error(mode.message);
      };
      return {
        missing,
        // The body is not registered: its hooks would fail first, with a less clear message.
        describe: (name) => describe(name, () => test(`the host provides ${needs.join(', ')}`, fail)),
        test: (name) => test(name, fail),
      };
    }
    case 'skip': {
      // Said on stderr as well: the default reporter lists no single test of a file that passed.
      const say = (name: string): void => console.warn(`skipped "${name}": ${mode.reason}`);
      return {
        missing,
        // Registered as skipped: the body is collected (the tests are listed) but no hook or test runs.
        describe(name, body) {
          say(name);
          describe.skip(`${name} [skipped: ${mode.reason}]`, body);
        },
        test(name, _body, timeout) {
          say(name);
          test(name, (context) => context.skip(mode.reason), timeout);
        },
      };
    }
  }
}
