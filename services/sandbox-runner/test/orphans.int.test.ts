import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { createBwrapBackend } from '../src/sandbox/index.js';
import { leftoverJobCgroups } from './helpers/cgroups.js';
import { hostGate } from './helpers/host.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/warm-runner.ts', import.meta.url));
// The warm boxes a root runner leaves are tmpfs mounts and job cgroups: without root or cgroups there is
// nothing of that kind to leave behind, so the test is skipped (and fails with CI=true).
const gate = await hostGate(['bubblewrap', 'root', 'cgroups']);
let scratchRoot: string;

beforeAll(async () => {
  scratchRoot = await mkdtemp(path.join(tmpdir(), 'tandem-orphans-'));
  await chmod(scratchRoot, 0o711);
});

afterAll(async () => {
  await rm(scratchRoot, { recursive: true, force: true });
});

describe('a runner killed hard', () => {
  gate.test(
    "leaves warm boxes behind, and the next runner's backend removes their mounts, directories and cgroups",
    async () => {
      const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, scratchRoot], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const pid = child.pid ?? 0;
      const said = await new Promise<string>((resolve) => {
        child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString('utf8').trim()));
      });
      expect(said).toBe('ok');
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      // What it left: warm boxes' directories (their tmpfs still mounted) and their cgroups.
      const left = (await readdir(scratchRoot)).filter((name) => name.startsWith(`tandem-sandbox-${pid}-`));
      expect(left.length).toBeGreaterThan(0);
      expect(await leftoverJobCgroups(pid)).not.toEqual([]);

      const next = createBwrapBackend({ scratchRoot });
      const result = await next.run({
        language: 'python',
        code: 'result = 2',
        limits: { timeoutMs: 5_000, maxOutputBytes: 1024 },
      });
      expect(result).toMatchObject({ outcome: 'ok', value: 2 });
      await next.close();
      expect(await readdir(scratchRoot)).toEqual([]);
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(scratchRoot);
      expect(await leftoverJobCgroups(pid)).toEqual([]);
    },
    60_000,
  );
});
