import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';

import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { detectCgroups, type CgroupSupport } from '../src/sandbox/cgroups.js';
import { type SandboxBackend, type SandboxLimits } from '../src/sandbox/index.js';
import { backendTracker } from './helpers/backends.js';
import { leftoverJobCgroups } from './helpers/cgroups.js';
import { hostGate } from './helpers/host.js';

const { trackedBackend, drainBackends, closeBackends } = backendTracker();

// Real bubblewrap and the host's real cgroups. This machine's kind runs the tests as root with cgroup v1
// memory and pids controllers (its cgroup v2 hierarchy holds neither). On a host without them the tests
// that need them are skipped, saying why; with CI=true they fail instead.
const withCgroups = await hostGate(['bubblewrap', 'root', 'cgroups']);
const withBubblewrap = await hostGate(['bubblewrap']);
const LIMITS: SandboxLimits = { timeoutMs: 10_000, maxOutputBytes: 64 * 1024 };
const MAX_PROCESSES = 32;

let support: CgroupSupport;
let backend: SandboxBackend;

beforeAll(async () => {
  support = await detectCgroups();
  backend = trackedBackend({ cgroups: support, maxProcesses: MAX_PROCESSES });
});

afterAll(async () => {
  await closeBackends();
  await drainBackends();
  expect(await leftoverJobCgroups()).toEqual([]);
});

describe('per-job cgroups', () => {
  withCgroups.test(
    'this host gives the root runner memory and pids cgroups, and the check reports nothing missing',
    async () => {
      expect(['v1', 'v2']).toContain(support.kind);
      const check = await backend.check();
      expect(check.ok).toBe(true);
      expect(check.warnings).toEqual([]);
    },
  );

  test('a runner without cgroups says exactly which limits it cannot enforce', async () => {
    const weaker = trackedBackend({ cgroups: 'off' });
    const check = await weaker.check();
    expect(check.warnings?.join('\n')).toMatch(/memory cgroup/);
    expect(check.warnings?.join('\n')).toMatch(/pids cgroup/);
  });

  withCgroups.test(
    'JavaScript ArrayBuffers past the memory limit end the job as memory_limit (the V8 heap cap misses them)',
    async () => {
      const result = await backend.run({
        language: 'javascript',
        code: 'const keep = []; for (let i = 0; i < 1000; i++) keep.push(new Uint8Array(16 * 1024 * 1024).fill(1)); return keep.length;',
        limits: { ...LIMITS, memoryMb: 128 },
      });
      expect(result.outcome).toBe('memory_limit');
      expect(result.errorMessage).toContain('128 MB');
      await drainBackends();
      expect(await leftoverJobCgroups()).toEqual([]);
    },
  );

  withCgroups.test('a fork bomb is held to the pids limit, and nothing of it survives the job', async () => {
    const result = await backend.run({
      language: 'python',
      code: [
        'import os, time',
        'children = 0',
        'for _ in range(1000):',
        '    try:',
        '        if os.fork() == 0:',
        '            time.sleep(60)',
        '            os._exit(0)',
        '        children += 1',
        '    except OSError:',
        '        break',
        'result = children',
      ].join('\n'),
      limits: { ...LIMITS, timeoutMs: 5_000 },
    });
    expect(result.outcome).toBe('ok');
    expect(typeof result.value).toBe('number');
    expect(Number(result.value)).toBeLessThan(MAX_PROCESSES + 4);
    // The sleeping children were in the job's cgroup, and a cgroup can only be removed once it is empty.
    await drainBackends();
    expect(await leftoverJobCgroups()).toEqual([]);
  });

  withBubblewrap.test(
    "without a pids cgroup a JavaScript box still gets its process limit, set on bwrap's held child",
    async () => {
      const weaker = trackedBackend({ cgroups: 'off', maxProcesses: MAX_PROCESSES });
      const marker = `started-${randomUUID()}`;
      const abort = new AbortController();
      const running = weaker.run(
        {
          language: 'javascript',
          code: `files.write(${JSON.stringify(marker)}, '');\nfor (;;) {}`,
          input: null,
          limits: { ...LIMITS, timeoutMs: 20_000 },
        },
        { signal: abort.signal },
      );
      try {
        // The box's Node host, found from the host by the file its guest wrote in its own /work.
        const pid = await vi.waitFor(
          async () => {
            for (const entry of await readdir('/proc')) {
              if (!/^\d+$/.test(entry)) continue;
              const argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
              if (argv[0] === '/usr/bin/node' && existsSync(`/proc/${entry}/root/work/${marker}`))
                return entry;
            }
            throw new Error('the job is not running yet');
          },
          { timeout: 10_000, interval: 20 },
        );
        const limits = await readFile(`/proc/${pid}/limits`, 'utf8');
        expect(limits).toMatch(new RegExp(`^Max processes\\s+${MAX_PROCESSES}\\s+${MAX_PROCESSES}\\s`, 'm'));
        expect(limits).toMatch(/^Max core file size\s+0\s+0\s/m);
      } finally {
        abort.abort();
        await running;
      }
    },
  );

  withCgroups.test('a job reports its peak memory', async () => {
    const result = await backend.run({
      language: 'python',
      code: 'block = bytearray(40 * 1024 * 1024)\nresult = len(block)',
      limits: { ...LIMITS, memoryMb: 256 },
    });
    expect(result.outcome).toBe('ok');
    expect(result.peakMemoryBytes ?? 0).toBeGreaterThan(40 * 1024 * 1024);
  });
});
