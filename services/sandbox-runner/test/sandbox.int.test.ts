import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';

import {
  type SandboxBackend,
  type SandboxJob,
  type SandboxLanguage,
  type SandboxLimits,
  type SandboxResult,
} from '../src/sandbox/index.js';
import { backendTracker } from './helpers/backends.js';
import { hostGate } from './helpers/host.js';

const { trackedBackend, drainBackends, closeBackends } = backendTracker();

// Real bubblewrap, real namespaces. CI installs bubblewrap; without it the file is skipped, saying why, and
// with CI=true it fails.
const gate = await hostGate(['bubblewrap']);
const SANDBOX_UID = process.getuid?.() === 0 ? 65534 : process.getuid?.();
const LIMITS: SandboxLimits = { timeoutMs: 10_000, maxOutputBytes: 64 * 1024 };

let scratchRoot: string;
let backend: SandboxBackend;

function run(
  language: SandboxLanguage,
  code: string,
  extra: { input?: unknown; limits?: Partial<SandboxLimits>; signal?: AbortSignal } = {},
): Promise<SandboxResult> {
  const job: SandboxJob = { language, code, input: extra.input, limits: { ...LIMITS, ...extra.limits } };
  return backend.run(job, extra.signal === undefined ? {} : { signal: extra.signal });
}

/** Host processes (seen from outside the box) whose command line contains `marker`. */
/**
 * A marker a guest can put on a process it forked: its name (`comm`, at most 15 bytes, set with
 * `prctl(PR_SET_NAME)`), since a guest can no longer start a program with the marker in its command line.
 */
function processMarker(prefix: string): string {
  return `${prefix}${randomUUID().replace(/-/g, '')}`.slice(0, 15);
}

/** The guest code that names the calling process `input` (see `processMarker`). */
const NAME_PROCESS = 'import ctypes; ctypes.CDLL(None).prctl(15, input.encode(), 0, 0, 0)';

async function hostProcessesWith(marker: string): Promise<Array<{ pid: number; status: string }>> {
  const found: Array<{ pid: number; status: string }> = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8');
      const name = (await readFile(`/proc/${entry}/comm`, 'utf8')).trim();
      if (!cmdline.includes(marker) && name !== marker) continue;
      const status = await readFile(`/proc/${entry}/status`, 'utf8');
      // A zombie keeps its name until it is reaped, but is no longer running anything.
      if (/^State:\s+Z/m.test(status)) continue;
      found.push({ pid: Number(entry), status });
    } catch {
      // The process exited while we looked.
    }
  }
  return found;
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(25);
  }
  return undefined;
}

function statusField(status: string, field: string): string[] {
  const line = status.split('\n').find((candidate) => candidate.startsWith(`${field}:`));
  return line === undefined
    ? []
    : line
        .slice(field.length + 1)
        .trim()
        .split(/\s+/);
}

gate.describe('the bubblewrap backend', () => {
  beforeAll(async () => {
    scratchRoot = await mkdtemp(path.join(tmpdir(), 'tandem-sandbox-test-'));
    // bwrap runs as the sandbox user and must traverse this directory to bind the job dir.
    await chmod(scratchRoot, 0o711);
    backend = trackedBackend({ scratchRoot });
    const health = await backend.check();
    expect(health.problems).toEqual([]);
    expect(health.ok).toBe(true);
  });

  afterEach(async () => {
    await drainBackends();
    // Every job, whatever its outcome, removes its host scratch dir.
    expect(await readdir(scratchRoot)).toEqual([]);
  });

  afterAll(async () => {
    await closeBackends();
    if (scratchRoot !== undefined) await rm(scratchRoot, { recursive: true, force: true });
  });

  describe('results and input', () => {
    test('python reports the global result and sees the input', async () => {
      const result = await run(
        'python',
        'result = {"sum": sum(input["numbers"]), "name": input["name"].upper()}',
        {
          input: { numbers: [1, 2, 3], name: 'tandem' },
        },
      );
      expect(result).toMatchObject({
        outcome: 'ok',
        value: { sum: 6, name: 'TANDEM' },
        exitCode: 0,
        signal: null,
      });
    });

    test('python without a result reports null, and without input sees None', async () => {
      const result = await run('python', 'print(input is None)');
      expect(result).toMatchObject({ outcome: 'ok', value: null, stdout: 'True\n' });
    });

    test('python stdout and stderr are captured separately', async () => {
      const result = await run(
        'python',
        'import sys\nprint("to out")\nprint("to err", file=sys.stderr)\nresult = 1',
      );
      expect(result).toMatchObject({ outcome: 'ok', stdout: 'to out\n', stderr: 'to err\n', value: 1 });
    });

    test('javascript return value wins, input is visible and top-level await works', async () => {
      const code =
        'await Promise.resolve();\nconsole.log("hello", input.name);\nconsole.error("warn");\nreturn input.numbers.map((n) => n * 2);';
      const result = await run('javascript', code, { input: { numbers: [1, 2], name: 'js' } });
      expect(result).toMatchObject({
        outcome: 'ok',
        value: [2, 4],
        stdout: 'hello js\n',
        stderr: 'warn\n',
        exitCode: 0,
      });
    });

    test('javascript reports an assigned result, a declared let result, and result after a trailing comment', async () => {
      expect((await run('javascript', 'result = input + 1', { input: 41 })).value).toBe(42);
      expect((await run('javascript', 'let result = "own";')).value).toBe('own');
      expect((await run('javascript', "'use strict';\nresult = [1] // no newline at the end")).value).toEqual(
        [1],
      );
      expect((await run('javascript', 'console.log(1)')).value).toBeNull();
    });

    test('javascript is plain ECMAScript in QuickJS: no require, process, timers or fetch', async () => {
      const result = await run(
        'javascript',
        'return [typeof require, typeof process, typeof setTimeout, typeof fetch, [3, 1, 2].toSorted().join(""), new Map([[1, 2]]).size]',
      );
      expect(result).toMatchObject({
        outcome: 'ok',
        value: ['undefined', 'undefined', 'undefined', 'undefined', '123', 1],
      });
      const required = await run('javascript', 'return require("node:fs")');
      expect(required.outcome).toBe('error');
      expect(required.errorMessage).toContain('ReferenceError');
    });
  });

  describe('guest failures are outcomes', () => {
    test('a python exception is an error with the traceback in stderr and no wrapper frames', async () => {
      const result = await run('python', 'x = 1\nraise ValueError("boom")');
      expect(result.outcome).toBe('error');
      expect(result.exitCode).toBe(1);
      expect(result.errorMessage).toBe('ValueError: boom');
      expect(result.stderr).toContain('Traceback (most recent call last)');
      expect(result.stderr).toContain('File "<code>", line 2');
      expect(result.stderr).not.toContain('/box/run.py');
    });

    test('a python syntax error is an error', async () => {
      const result = await run('python', 'def broken(:\n  pass');
      expect(result.outcome).toBe('error');
      expect(result.stderr).toContain('SyntaxError');
    });

    test('a javascript exception is an error located in code.js', async () => {
      const result = await run('javascript', 'const x = 1;\nthrow new TypeError("bad " + x);');
      expect(result).toMatchObject({ outcome: 'error', exitCode: 1, errorMessage: 'TypeError: bad 1' });
      expect(result.stderr).toContain('code.js:2');
      expect(result.stderr).not.toContain('/box/run.cjs');
    });

    test('a javascript syntax error shows where it is', async () => {
      const result = await run('javascript', 'let a = 1;\nfoo(;');
      expect(result.outcome).toBe('error');
      expect(result.stderr).toContain('code.js:2');
      expect(result.errorMessage).toContain('SyntaxError');
    });

    test('a result that is not JSON is an error with a clear message', async () => {
      for (const [language, code] of [
        ['python', 'result = object()'],
        ['python', 'result = float("nan")'],
        ['javascript', 'return 10n'],
        ['javascript', 'const a = {}; a.self = a; return a'],
        ['javascript', 'return () => 1'],
      ] as const) {
        const result = await run(language, code);
        expect(result.outcome, code).toBe('error');
        expect(result.value).toBeNull();
        expect(result.errorMessage, code).toContain('not JSON-serialisable');
      }
    });

    test('garbage the guest writes to the result channel is an error, not a crash', async () => {
      const python = await run('python', 'import os\nos.write(3, b"{not json")\nresult = 1');
      expect(python.outcome).toBe('error');
      expect(python.errorMessage).toContain('invalid JSON');
      // JavaScript guests have no descriptors at all: the QuickJS host alone writes the report.
    });

    test('a non-zero exit is an error with its code; exit(0) is ok with a null value', async () => {
      expect(await run('python', 'import sys\nsys.exit(3)')).toMatchObject({ outcome: 'error', exitCode: 3 });
      expect(await run('python', 'result = 1\nexit(0)')).toMatchObject({ outcome: 'ok', value: 1 });
    });

    test('a guest killed by SIGKILL not sent by the runner is killed', async () => {
      const result = await run('python', 'import os, signal\nos.kill(os.getpid(), signal.SIGKILL)');
      expect(result).toMatchObject({ outcome: 'killed', signal: 'SIGKILL', exitCode: null });
    });

    test('python beyond its memory limit is memory_limit', async () => {
      const result = await run('python', 'x = bytearray(1024 * 1024 * 1024)', { limits: { memoryMb: 128 } });
      expect(result.outcome).toBe('memory_limit');
      expect(result.stderr).toContain('MemoryError');
    });

    test('a memory limit too small for the interpreter to start is memory_limit, not sandbox_error', async () => {
      const result = await run('javascript', 'return 1', { limits: { memoryMb: 1 } });
      expect(result.outcome).toBe('memory_limit');
    });

    test('javascript beyond its heap limit is memory_limit', async () => {
      const code = 'const keep = []; for (;;) keep.push({ n: Math.random(), list: [1, 2, 3] });';
      const result = await run('javascript', code, { limits: { memoryMb: 64, timeoutMs: 20_000 } });
      expect(result.outcome).toBe('memory_limit');
    });
  });

  describe('limits', () => {
    test.each([
      ['python', 'while True:\n    pass'],
      ['javascript', 'for (;;) {}'],
    ] as const)('an infinite %s loop times out within the bound', async (language, code) => {
      const result = await run(language, code, { limits: { timeoutMs: 1_000 } });
      expect(result).toMatchObject({ outcome: 'timeout', signal: 'SIGKILL', exitCode: null, value: null });
      expect(result.durationMs).toBeGreaterThanOrEqual(1_000);
      expect(result.durationMs).toBeLessThan(2_500);
    });

    test('a python loop printing forever ends with output_limit and exactly the cap of stdout', async () => {
      const result = await run('python', 'while True:\n    print("x" * 100)', {
        limits: { maxOutputBytes: 4_096 },
      });
      expect(result).toMatchObject({
        outcome: 'output_limit',
        stdoutTruncated: true,
        stderrTruncated: false,
      });
      expect(Buffer.byteLength(result.stdout)).toBe(4_096);
      expect(result.durationMs).toBeLessThan(5_000);
    });

    test('a javascript loop writing stderr forever ends with output_limit', async () => {
      const result = await run('javascript', 'for (;;) console.error("y".repeat(1000));', {
        limits: { maxOutputBytes: 4_096 },
      });
      expect(result).toMatchObject({
        outcome: 'output_limit',
        stderrTruncated: true,
        stdoutTruncated: false,
      });
      expect(Buffer.byteLength(result.stderr)).toBe(4_096);
    });

    test('truncated output is cut at a character boundary', async () => {
      const result = await run('python', 'while True:\n    print("é" * 100, end="")', {
        limits: { maxOutputBytes: 1_001 },
      });
      expect(result.outcome).toBe('output_limit');
      expect(result.stdout).toBe('é'.repeat(500));
    });

    test('writes go only to a size-capped /work and a separately capped /tmp; everything else is read-only', async () => {
      const small = trackedBackend({ scratchRoot, workBytes: 1024 * 1024, tmpBytes: 512 * 1024 });
      const code = [
        'import os',
        'outcome = {"cwd": os.getcwd(), "home": os.environ["HOME"]}',
        'for target, size in [("/work/big", 2 << 20), ("/tmp/big", 768 << 10), ("/tmp/fits", 256 << 10)]:',
        '    try:',
        '        with open(target, "wb") as f:',
        '            f.write(b"a" * size)',
        '        outcome[target] = "wrote"',
        '    except OSError as error:',
        '        outcome[target] = error.errno',
        '    try: os.remove(target)',
        '    except OSError: pass',
        'for target in ["/x", "/etc/x", "/dev/x", "/dev/shm/x", "/usr/x", "/box/x", "/proc/x"]:',
        '    try:',
        '        open(target, "w").close()',
        '        outcome[target] = "wrote"',
        '    except OSError as error:',
        '        outcome[target] = "refused"',
        'open("/work/small", "w").write("ok")',
        'outcome["small"] = open("small").read()',
        'open("/tmp/scratch", "w").write("not collected")',
        'result = outcome',
      ].join('\n');
      const result = await small.run({ language: 'python', code, limits: LIMITS });
      expect(result.outcome).toBe('ok');
      expect(result.value).toEqual({
        cwd: '/work',
        home: '/tmp',
        '/work/big': 28, // ENOSPC
        '/tmp/big': 28,
        '/tmp/fits': 'wrote',
        '/x': 'refused',
        '/etc/x': 'refused',
        '/dev/x': 'refused',
        '/dev/shm/x': 'refused',
        '/usr/x': 'refused',
        '/box/x': 'refused',
        '/proc/x': 'refused',
        small: 'ok',
      });
      // Only the working directory comes back; /tmp is the box's own.
      expect(result.files.map((file) => [file.path, file.content.toString()])).toEqual([['small', 'ok']]);
    });

    test('an aborted run is killed', async () => {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 300);
      const result = await run('python', 'while True:\n    pass', { signal: controller.signal });
      expect(result).toMatchObject({ outcome: 'killed', signal: 'SIGKILL' });
      expect(result.durationMs).toBeLessThan(2_000);
    });
  });

  describe('isolation', () => {
    let server: Server;
    let serverPort: number;

    beforeAll(async () => {
      server = createServer((socket) => {
        socket.on('error', () => undefined);
        socket.end('hello');
      });
      await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('server has no port');
      serverPort = address.port;
    });

    afterAll(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    test('the guest cannot reach the network: not the host loopback, Postgres, NATS, host addresses or DNS', async () => {
      // Control: the same target is reachable from outside the box.
      await new Promise<void>((resolve, reject) => {
        const socket = connect(serverPort, '127.0.0.1', () => {
          socket.destroy();
          resolve();
        });
        socket.on('error', reject);
      });
      const hostAddresses = Object.values(networkInterfaces())
        .flat()
        .flatMap((info) =>
          info !== undefined && info.family === 'IPv4' && !info.internal ? [info.address] : [],
        );
      const targets = [
        ['127.0.0.1', serverPort],
        ['127.0.0.1', 5432],
        ['127.0.0.1', 4222],
        ['1.1.1.1', 53],
        ...hostAddresses.map((address) => [address, serverPort]),
      ];
      const code = [
        'import socket',
        'outcome = {}',
        'for host, port in input:',
        '    s = socket.socket()',
        '    s.settimeout(2)',
        '    try:',
        '        s.connect((host, port))',
        '        outcome[host + ":" + str(port)] = "connected"',
        '    except OSError as error:',
        '        outcome[host + ":" + str(port)] = type(error).__name__',
        '    finally:',
        '        s.close()',
        'try:',
        '    socket.getaddrinfo("example.com", 80)',
        '    outcome["dns"] = "resolved"',
        'except OSError:',
        '    outcome["dns"] = "failed"',
        'outcome["interfaces"] = [name for _, name in socket.if_nameindex()]',
        'result = outcome',
      ].join('\n');
      const result = await run('python', code, { input: targets });
      expect(result.outcome).toBe('ok');
      const value = result.value;
      if (typeof value !== 'object' || value === null) throw new Error('no result');
      expect(Object.keys(value).sort()).toEqual(
        [...targets.map(([host, port]) => `${String(host)}:${String(port)}`), 'dns', 'interfaces'].sort(),
      );
      expect(Object.values(value)).not.toContain('connected');
      expect(value).toMatchObject({ dns: 'failed', interfaces: ['lo'] });

      // JavaScript has no network API at all (QuickJS); the box would refuse it anyway, as for Python above.
      const javascript = await run('javascript', 'return [typeof fetch, typeof WebSocket, typeof require];');
      expect(javascript).toMatchObject({ outcome: 'ok', value: ['undefined', 'undefined', 'undefined'] });
    });

    test("the guest cannot read the runner's environment anywhere", async () => {
      const secret = `tandem-secret-${randomUUID()}`;
      process.env.TANDEM_TEST_SECRET = secret;
      try {
        const code = [
          'import os',
          'seen = [repr(dict(os.environ))]',
          'for pid in [p for p in os.listdir("/proc") if p.isdigit()] + ["self", "thread-self"]:',
          '    for name in ["environ", "cmdline"]:',
          '        try:',
          '            seen.append(open("/proc/" + pid + "/" + name, "rb").read().decode("utf-8", "replace"))',
          '        except OSError:',
          '            pass',
          'for top in ["/box", "/work", "/etc", "/tmp"]:',
          '    for folder, _, files in os.walk(top):',
          '        for name in files:',
          '            try:',
          '                seen.append(open(os.path.join(folder, name), "rb").read(1 << 20).decode("utf-8", "replace"))',
          '            except OSError:',
          '                pass',
          'result = {"text": "\\n".join(seen), "environ_of_pid_1": open("/proc/1/environ", "rb").read().decode()}',
        ].join('\n');
        const result = await run('python', code);
        expect(result.outcome).toBe('ok');
        const text = JSON.stringify(result.value);
        expect(text.length).toBeGreaterThan(100);
        expect(text).not.toContain(secret);
        expect(text).not.toContain('TANDEM_TEST_SECRET');
        expect(result.value).toMatchObject({ environ_of_pid_1: '' });
        // JavaScript (QuickJS) has no environment, file or process API to look with; its whole global object
        // holds nothing of the runner's.
        const javascript = await run(
          'javascript',
          'return Object.getOwnPropertyNames(globalThis).map((name) => { try { return name + "=" + String(globalThis[name]); } catch { return name; } }).join("\\n");',
        );
        expect(javascript.outcome).toBe('ok');
        expect(JSON.stringify(javascript.value)).not.toContain(secret);
      } finally {
        delete process.env.TANDEM_TEST_SECRET;
      }
    });

    test('the guest cannot read host files outside the read-only system tree', async () => {
      const canary = path.join(tmpdir(), `tandem-canary-${randomUUID()}`);
      await writeFile(canary, 'host data', { mode: 0o644 });
      try {
        const targets = [
          '/work/main/package.json',
          '/root',
          '/home',
          '/etc/shadow',
          '/etc/passwd',
          '/var',
          '/run',
          '/sys',
          '/srv',
          canary,
          scratchRoot,
        ];
        const code = [
          'import os',
          'outcome = {}',
          'for target in input:',
          '    try:',
          '        if os.path.isdir(target):',
          '            os.listdir(target)',
          '        else:',
          '            open(target, "rb").read(1)',
          '        outcome[target] = "readable"',
          '    except OSError as error:',
          '        outcome[target] = type(error).__name__',
          'result = {"paths": outcome, "root": sorted(os.listdir("/")), "etc": sorted(os.listdir("/etc"))}',
        ].join('\n');
        const result = await run('python', code, { input: targets });
        expect(result.outcome).toBe('ok');
        expect(result.value).toMatchObject({
          paths: Object.fromEntries(targets.map((target) => [target, 'FileNotFoundError'])),
          // Only the interpreter's own directories (its loader is under /lib64 on x86_64) and the box's mounts.
          root: ['box', 'dev', 'etc', 'lib', 'lib64', 'proc', 'tmp', 'usr', 'work'].filter(
            (name) => name !== 'lib64' || process.arch === 'x64',
          ),
          etc: ['ld.so.cache'],
        });
      } finally {
        await rm(canary, { force: true });
      }
    });

    test('the guest runs as an unprivileged host uid with no capabilities', async () => {
      const marker = processMarker('tuid');
      const controller = new AbortController();
      const code = [
        'import os, time',
        'if os.fork() == 0:',
        `    ${NAME_PROCESS}`,
        '    time.sleep(60)',
        'print(os.getuid(), os.geteuid(), os.getgid(), flush=True)',
        'time.sleep(60)',
      ].join('\n');
      const running = run('python', code, { input: marker, signal: controller.signal });
      const seen = await waitFor(async () => (await hostProcessesWith(marker))[0], 10_000);
      controller.abort();
      const result = await running;

      expect(seen, 'the guest process was never seen on the host').toBeDefined();
      const status = seen?.status ?? '';
      expect(SANDBOX_UID).not.toBe(0);
      expect(statusField(status, 'Uid')).toEqual(Array(4).fill(String(SANDBOX_UID)));
      expect(statusField(status, 'Gid')[0]).not.toBe('0');
      // No supplementary groups carried over from a root runner (root's group 0 would open group-root files).
      expect(statusField(status, 'Groups').filter((group) => group !== '')).not.toContain('0');
      expect(statusField(status, 'CapEff')).toEqual(['0000000000000000']);
      expect(statusField(status, 'CapPrm')).toEqual(['0000000000000000']);
      expect(result.outcome).toBe('killed');
      expect(result.stdout).toBe(`${SANDBOX_UID} ${SANDBOX_UID} ${SANDBOX_UID}\n`);
      expect(await hostProcessesWith(marker)).toEqual([]);
    });

    const daemonCode = (finish: string): string =>
      [
        'import os, time',
        'pid = os.fork()',
        'if pid == 0:',
        '    os.setsid()',
        '    if os.fork() == 0:',
        '        import signal',
        '        for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT): signal.signal(s, signal.SIG_IGN)',
        `        ${NAME_PROCESS}`,
        '        while True: time.sleep(1)',
        '    os._exit(0)',
        'os.waitpid(pid, 0)',
        finish,
      ].join('\n');

    test.each([
      ['a timeout', 'while True:\n    pass', 'timeout'],
      ['a normal exit', 'time.sleep(1)\nresult = "done"', 'ok'],
    ] as const)('a setsid double-forked daemon does not survive %s', async (_name, finish, outcome) => {
      const marker = processMarker('tdmn');
      const running = run('python', daemonCode(finish), { input: marker, limits: { timeoutMs: 3_000 } });
      const seen = await waitFor(async () => (await hostProcessesWith(marker))[0], 5_000);
      const result = await running;
      expect(seen, 'the daemon never started, so this test proves nothing').toBeDefined();
      expect(result.outcome).toBe(outcome);
      expect(await hostProcessesWith(marker)).toEqual([]);
      await sleep(300);
      expect(await hostProcessesWith(marker)).toEqual([]);
    });

    test('the scratch dir exists while a job runs and is gone afterwards', async () => {
      const running = run('python', 'import time\ntime.sleep(1)\nresult = 1');
      const during = await waitFor(async () => {
        const entries = await readdir(scratchRoot);
        return entries.length > 0 ? entries : undefined;
      }, 5_000);
      expect(during).toHaveLength(1);
      expect((await running).outcome).toBe('ok');
      await backend.drain();
      expect(await readdir(scratchRoot)).toEqual([]);
    });

    test('concurrent jobs do not see each other', async () => {
      const code =
        'import os\nopen("/work/" + str(input), "w").write("x")\nimport time\ntime.sleep(0.3)\nresult = sorted(os.listdir("/work"))';
      const results = await Promise.all([1, 2, 3, 4].map((id) => run('python', code, { input: id })));
      expect(results.map((result) => result.value)).toEqual([['1'], ['2'], ['3'], ['4']]);
    });

    test('no descriptor inherited without close-on-exec reaches user code', async () => {
      const python = [
        'import os',
        'leaked = []',
        'for name in os.listdir("/proc/self/fd"):',
        '    try:',
        '        flags = [l for l in open("/proc/self/fdinfo/" + name) if l.startswith("flags:")][0]',
        '    except OSError:',
        '        continue',
        '    if int(name) > 3 and not int(flags.split()[1], 8) & 0o2000000:',
        '        leaked.append(name)',
        'result = leaked',
      ].join('\n');
      expect(await run('python', python)).toMatchObject({ outcome: 'ok', value: [] });
      // JavaScript guests cannot name a descriptor at all; the QuickJS host closes the same ones at start.
    });
  });

  describe('the wrapper boundary', () => {
    test('python code full of quotes and wrapper-closing text runs as plain code', async () => {
      const code = String.raw`s = """it's a "triple" ''' quote"""
t = '"""' + "'''" + '${'`'}' + '${'${x}'}'
# """); import os; os._exit(3) #
result = {"s": s, "t": t}`;
      const result = await run('python', code);
      expect(result).toMatchObject({
        outcome: 'ok',
        value: { s: `it's a "triple" ''' quote`, t: `"""'''\`\${x}` },
      });
    });

    test('javascript code full of backticks and wrapper-closing text runs as plain code', async () => {
      const code = String.raw`const t = ${'`'}tick ${'${"`"}'} ${'${1 + 1}'}${'`'};
const c = '*/ }); })(); //';
/* }); process.exit(3); (async () => { */
return { t, c, d: "\u2028" } // trailing comment without a newline`;
      const result = await run('javascript', code);
      expect(result).toMatchObject({
        outcome: 'ok',
        value: { t: 'tick ` 2', c: '*/ }); })(); //', d: '\u2028' },
      });
    });

    test.each([
      '}); console.log("ESCAPED"); (async function () {',
      'return 1; }); console.log("ESCAPED"); (async function () {',
      '})(); console.log("ESCAPED"); //',
    ])('javascript that tries to close the wrapper is a syntax error and never runs: %s', async (code) => {
      const result = await run('javascript', code);
      expect(result.outcome).toBe('error');
      expect(result.errorMessage).toContain('SyntaxError');
      expect(result.stdout).not.toContain('ESCAPED');
    });

    test('python with an unbalanced triple quote is a syntax error', async () => {
      const result = await run('python', 'x = """\nresult = 1');
      expect(result.outcome).toBe('error');
      expect(result.stderr).toContain('SyntaxError');
    });
  });

  describe('backend health', () => {
    test('check() and run() report a missing bwrap instead of throwing', async () => {
      const broken = trackedBackend({ scratchRoot, bwrapPath: '/nonexistent/bwrap' });
      const health = await broken.check();
      expect(health.ok).toBe(false);
      expect(health.problems.join('\n')).toContain('/nonexistent/bwrap');
      const result = await broken.run({ language: 'python', code: 'result = 1', limits: LIMITS });
      expect(result.outcome).toBe('sandbox_error');
      expect(result.errorMessage).toContain('/nonexistent/bwrap');
    });

    test('an interpreter missing inside the box is a sandbox_error, not a guest error', async () => {
      const broken = trackedBackend({ scratchRoot, pythonPath: '/usr/bin/python-does-not-exist' });
      const result = await broken.run({ language: 'python', code: 'result = 1', limits: LIMITS });
      expect(result.outcome).toBe('sandbox_error');
    });
  });
});
