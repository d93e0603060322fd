import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createBwrapBackend, type SandboxBackend } from '../src/sandbox/index.js';

// The weaker backend an operator may choose where bubblewrap is missing: same wrappers, limits and uid,
// no namespaces. These tests pin both what it still enforces and what it plainly does not.
const LIMITS = { timeoutMs: 10_000, maxOutputBytes: 64 * 1024, memoryMb: 256 };
let scratchRoot: string;
let backend: SandboxBackend;

beforeAll(async () => {
  scratchRoot = await mkdtemp(path.join(tmpdir(), 'tandem-process-backend-'));
  await chmod(scratchRoot, 0o711);
  // A bwrap path that does not exist: this backend must not need it.
  backend = createBwrapBackend({ scratchRoot, isolation: 'none', bwrapPath: '/nonexistent/bwrap' });
});

afterAll(async () => {
  await backend.close();
  expect(await readdir(scratchRoot)).toEqual([]);
  await rm(scratchRoot, { recursive: true, force: true });
});

describe('the "process" backend', () => {
  test('is named for what it is, starts without bubblewrap, and lists every missing isolation as a warning', async () => {
    expect(backend.name).toBe('process');
    const check = await backend.check();
    expect(check.problems).toEqual([]);
    expect(check.ok).toBe(true);
    const warnings = (check.warnings ?? []).join('\n');
    expect(warnings).toContain('no namespaces');
    expect(warnings).toContain('no network isolation');
    expect(warnings).toContain('no syscall filter');
  });

  test('runs Python and JavaScript with input, files and results as the bwrap backend does', async () => {
    const python = await backend.run({
      language: 'python',
      code: 'import os\nopen("out.txt", "w").write(input["word"])\nresult = {"uid": os.getuid(), "env": sorted(os.environ)}',
      input: { word: 'hello' },
      limits: LIMITS,
    });
    expect(python.outcome).toBe('ok');
    expect(python.files.map((file) => [file.path, file.content.toString('utf8')])).toEqual([
      ['out.txt', 'hello'],
    ]);
    const value = python.value;
    // A root runner drops the guest to uid 65534; any other runs it as itself.
    expect(value).toMatchObject({ uid: process.getuid?.() === 0 ? 65534 : process.getuid?.() });
    // Started with an empty environment: nothing of the runner's leaks in.
    expect(value).toMatchObject({
      env: expect.not.arrayContaining(['DATABASE_URL', 'NATS_URL', 'PATH']) as unknown,
    });
    const javascript = await backend.run({
      language: 'javascript',
      code: 'return input * 2',
      input: 21,
      limits: LIMITS,
    });
    expect(javascript).toMatchObject({ outcome: 'ok', value: 42 });
  });

  test('still enforces the wall clock and the memory limit', async () => {
    const runaway = await backend.run({
      language: 'python',
      code: 'while True:\n    pass',
      limits: { ...LIMITS, timeoutMs: 500 },
    });
    expect(runaway.outcome).toBe('timeout');
    const bomb = await backend.run({
      language: 'python',
      code: 'keep = []\nwhile True:\n    keep.append(bytearray(16 << 20))',
      limits: { ...LIMITS, memoryMb: 128 },
    });
    expect(bomb.outcome).toBe('memory_limit');
  });

  test('a Python guest cannot start a program here either (the exec filter needs no box)', async () => {
    const result = await backend.run({
      language: 'python',
      code: [
        'import os, subprocess',
        'def attempt(f):',
        '    try:',
        '        return "started: " + str(f())',
        '    except OSError as error:',
        '        return type(error).__name__',
        'result = {',
        '    "subprocess": attempt(lambda: subprocess.run(["/bin/true"]).returncode),',
        '    "system": os.system("true"),',
        '    "exists": os.path.exists("/bin/sh"),',
        '}',
      ].join('\n'),
      limits: LIMITS,
    });
    expect(result.outcome, result.stderr).toBe('ok');
    // The host's shell is right there, and still cannot be started: exec is what is refused.
    expect(result.value).toEqual({ subprocess: 'PermissionError', system: 127 << 8, exists: true });
  });

  test('does not hide the host: the guest sees host files and processes (which is why it must be chosen explicitly)', async () => {
    const result = await backend.run({
      language: 'python',
      code: 'import os\nresult = {"etc": os.path.exists("/etc/hostname"), "pids": len([p for p in os.listdir("/proc") if p.isdigit()])}',
      limits: LIMITS,
    });
    expect(result.outcome).toBe('ok');
    const value = result.value;
    expect(value).toMatchObject({ etc: true });
    expect(typeof value === 'object' && value !== null && 'pids' in value ? value.pids : 0).toBeGreaterThan(
      2,
    );
  });
});
