import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUICKJS_HOST, QUICKJS_NODE_FLAGS, quickjsPackageDirs } from '../src/sandbox/quickjs-host.js';

/**
 * The QuickJS host as the box runs it, minus the box: a real `/usr/bin/node` with the host's flags, fd 3
 * (result channel) and fd 4 (go channel) as pipes, an empty environment, and `<qjsRoot>/node_modules` made of
 * symlinks to the packages `quickjsPackageDirs()` finds. The protocol bytes are spelled out here rather than
 * imported: they are what the supervisor depends on.
 */

const READY = Buffer.from('\u0000tandem:ready\n', 'utf8');
const MIB = 1024 * 1024;
/** Generous: this machine is slow, and a test must fail on its assertion, not on vitest's timeout. */
const SAFETY_KILL_MS = 25_000;

let root = '';
let qjsRoot = '';
let hostPath = '';
let boxCount = 0;

interface HostRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The ready marker arrived (and, unless `go` was null, the go line was sent). */
  ready: boolean;
  /** Whether the safety timer had to kill the host. */
  killed: boolean;
  /** Everything on fd 3 after the marker. */
  afterMarker: string;
  /** `afterMarker` parsed, or undefined when empty. */
  report: unknown;
  stdout: string;
  stderr: string;
  workDir: string;
  /** From the go line to the host's exit. */
  jobMs: number;
}

interface RunOptions {
  code: string;
  input?: unknown;
  /** The go line without its newline; null closes fd 4 instead (the pool discarding the box). */
  go?: string | null;
  /** Written to fd 4 as they are, before it is closed; replaces `go`. */
  goBytes?: string;
  memoryBytes?: number;
  timeoutMs?: number;
  prepareWork?: (workDir: string) => Promise<void>;
}

function pipeAt(streams: readonly unknown[], fd: number): Duplex {
  const stream = streams[fd];
  if (!(stream instanceof Duplex)) throw new Error(`fd ${fd} of the host is not a pipe`);
  return stream;
}

async function runHost(options: RunOptions): Promise<HostRun> {
  boxCount += 1;
  const boxDir = path.join(root, `box-${boxCount}`);
  const workDir = path.join(boxDir, 'work');
  await mkdir(workDir, { recursive: true });
  await writeFile(path.join(boxDir, 'code.js'), options.code);
  await writeFile(path.join(boxDir, 'input.json'), JSON.stringify(options.input ?? null));
  if (options.prepareWork) await options.prepareWork(workDir);
  const go =
    options.go === undefined
      ? `${options.memoryBytes ?? 64 * MIB} ${options.timeoutMs ?? 10_000}`
      : options.go;

  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/node', [...QUICKJS_NODE_FLAGS, hostPath, qjsRoot, boxDir, workDir], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      env: {},
    });
    const channel = pipeAt(child.stdio, 3);
    const goChannel = pipeAt(child.stdio, 4);
    // The host may exit before reading fd 4 (a failed start): writing then fails with EPIPE.
    goChannel.on('error', () => undefined);
    let stdout = '';
    let stderr = '';
    let received = Buffer.alloc(0);
    let ready = false;
    let killed = false;
    let goAt = Date.now();
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    channel.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (ready || received.length < READY.length) return;
      if (!received.subarray(0, READY.length).equals(READY)) return;
      ready = true;
      goAt = Date.now();
      if (options.goBytes !== undefined) goChannel.end(options.goBytes);
      else if (go === null) goChannel.end();
      else goChannel.end(`${go}\n`);
    });
    const safety = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, SAFETY_KILL_MS);
    child.on('error', (error) => {
      clearTimeout(safety);
      reject(error);
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(safety);
      const afterMarker = ready ? received.subarray(READY.length).toString('utf8') : '';
      let report: unknown;
      if (afterMarker.trim() !== '') {
        try {
          report = JSON.parse(afterMarker);
        } catch {
          report = { unparseable: afterMarker };
        }
      }
      resolve({
        exitCode,
        signal,
        ready,
        killed,
        afterMarker,
        report,
        stdout,
        stderr,
        workDir,
        jobMs: Date.now() - goAt,
      });
    });
  });
}

/** Runs `code` and expects an ok report; returns the reported value. */
async function valueOf(code: string, input?: unknown): Promise<unknown> {
  const run = await runHost({ code, input });
  expect(run.report, run.stderr).toMatchObject({ status: 'ok' });
  expect(run.exitCode).toBe(0);
  const report: unknown = run.report;
  return typeof report === 'object' && report !== null && 'value' in report ? report.value : undefined;
}

function expectNoHostDetails(text: string): void {
  for (const hostDetail of ['node_modules', 'host.cjs', 'quickjs-emscripten', 'tandem:host', root]) {
    expect(text).not.toContain(hostDetail);
  }
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'quickjs-host-test-'));
  qjsRoot = path.join(root, 'qjs');
  for (const { hostPath: packageDir, boxPath } of await quickjsPackageDirs()) {
    expect(boxPath.startsWith('/qjs/node_modules/')).toBe(true);
    const link = path.join(qjsRoot, boxPath.slice('/qjs/'.length));
    await mkdir(path.dirname(link), { recursive: true });
    await symlink(packageDir, link);
  }
  hostPath = path.join(root, 'host.cjs');
  await writeFile(hostPath, QUICKJS_HOST);
});

afterAll(async () => {
  if (root !== '') await rm(root, { recursive: true, force: true });
});

describe('quickjsPackageDirs', () => {
  it('finds the real directories of the three packages and their places under /qjs/node_modules', async () => {
    const dirs = await quickjsPackageDirs();
    expect(dirs.map((dir) => dir.boxPath)).toEqual([
      '/qjs/node_modules/quickjs-emscripten-core',
      '/qjs/node_modules/@jitl/quickjs-ffi-types',
      '/qjs/node_modules/@jitl/quickjs-ng-wasmfile-release-sync',
    ]);
    for (const dir of dirs) {
      const manifest: unknown = JSON.parse(await readFile(path.join(dir.hostPath, 'package.json'), 'utf8'));
      expect(manifest).toMatchObject({
        name: dir.boxPath.slice('/qjs/node_modules/'.length),
        version: '0.32.0',
      });
      expect(dir.hostPath).not.toContain(`${path.sep}services${path.sep}`);
    }
  });
});

describe('the QuickJS host protocol', () => {
  it('writes the ready marker, then exactly one ok report, and exits 0', async () => {
    const run = await runHost({ code: 'return 1 + 2' });
    expect(run.ready).toBe(true);
    expect(run.afterMarker).toBe('{"status":"ok","value":3}');
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe('');
  });

  it('exits 0 and writes nothing after the marker when fd 4 closes before the go line', async () => {
    const run = await runHost({ code: 'files.write("ran", "yes"); return 1', go: null });
    expect(run.ready).toBe(true);
    expect(run.afterMarker).toBe('');
    expect(run.exitCode).toBe(0);
    expect(run.stdout + run.stderr).toBe('');
    expect(await readdir(run.workDir)).toEqual([]);
  });

  it('treats a go line cut short by EOF like EOF', async () => {
    const run = await runHost({ code: 'return 1', goBytes: '1024 50' });
    expect(run.afterMarker).toBe('');
    expect(run.exitCode).toBe(0);
  });

  it('reports a malformed go line as an exception and exits 1', async () => {
    for (const go of ['garbage', '12 -5', '1 2 3', '']) {
      const run = await runHost({ code: 'return 1', go });
      expect(run.report).toMatchObject({ status: 'error', kind: 'exception' });
      expect(run.exitCode).toBe(1);
    }
  });
});

describe('guest semantics', () => {
  it('takes a returned value, the global result, or the code’s own let result', async () => {
    expect(await valueOf('result = { a: [1, "x"] }')).toEqual({ a: [1, 'x'] });
    expect(await valueOf('let result = 5;\nresult += 1;')).toBe(6);
    expect(await valueOf('result = "assigned"; return "returned"')).toBe('returned');
    expect(await valueOf('const unused = 1')).toBeNull();
  });

  it('supports top-level await', async () => {
    expect(await valueOf('const v = await Promise.resolve(20);\nreturn v + (await (async () => 1)())')).toBe(
      21,
    );
  });

  it('passes input through unchanged', async () => {
    const input = { nested: [1, 'é', { z: null }], emoji: '😀', flag: true, number: 1.5e21 };
    expect(await valueOf('return input', input)).toEqual(input);
  });

  it('runs jobs the program left queued before reporting', async () => {
    const run = await runHost({ code: 'Promise.resolve().then(() => console.log("later"));\nreturn 1' });
    expect(run.report).toEqual({ status: 'ok', value: 1 });
    expect(run.stdout).toBe('later\n');
  });

  it('routes and formats console output', async () => {
    const run = await runHost({
      code: [
        'console.log("text", 42, { a: [1, "x", { b: null }] }, [1, 2], null, undefined, true, function named() {}, Symbol("s"), 10n, -0);',
        'console.info("info");',
        'console.debug("debug", new Map([["k", 1]]), new Set([2]));',
        'const cycle = { name: "c" }; cycle.self = cycle; console.log(cycle);',
        'console.log({ deep: { er: { est: { x: 1 } } } }, [[[[1]]]]);',
        'console.error("err", new Error("boom"));',
        'console.warn("warn", "a\\u0000b");',
      ].join('\n'),
    });
    expect(run.report).toEqual({ status: 'ok', value: null });
    expect(run.stdout).toBe(
      [
        'text 42 { a: [ 1, "x", { b: null } ] } [ 1, 2 ] null undefined true [Function named] Symbol(s) 10n -0',
        'info',
        'debug Map(1) { "k" => 1 } Set(1) { 2 }',
        '{ name: "c", self: [Circular] }',
        '{ deep: { er: { est: [Object] } } } [ [ [ [Array] ] ] ]',
        '',
      ].join('\n'),
    );
    expect(run.stderr).toMatch(/^err Error: boom\n {4}at __tandem_main \(code\.js:6:\d+\)\nwarn a/);
    expect(run.stderr.endsWith('\nwarn a\u0000b\n')).toBe(true);
  });

  it('does not lose output written just before exit', async () => {
    const run = await runHost({
      code: 'for (let i = 0; i < 2000; i++) console.log("line " + i + " " + "x".repeat(500));\nreturn "done"',
    });
    expect(run.report).toEqual({ status: 'ok', value: 'done' });
    const lines = run.stdout.split('\n');
    expect(lines).toHaveLength(2001);
    expect(lines[1999]).toBe(`line 1999 ${'x'.repeat(500)}`);
  });
});

describe('files', () => {
  it('writes, reads, lists and checks files in the working directory', async () => {
    const run = await runHost({
      code: [
        'files.write("data/nested/out.txt", "hé\\u0000llo");',
        'files.write("top.txt", "top");',
        'return {',
        '  read: files.read("data/nested/out.txt"),',
        '  given: files.read("given.csv"),',
        '  list: files.list(),',
        '  exists: [files.exists("top.txt"), files.exists("data/nested"), files.exists("missing.txt")],',
        '  frozen: Object.isFrozen(files),',
        '};',
      ].join('\n'),
      prepareWork: (workDir) => writeFile(path.join(workDir, 'given.csv'), 'a,b\n1,2\n'),
    });
    expect(run.report).toEqual({
      status: 'ok',
      value: {
        read: 'hé\u0000llo',
        given: 'a,b\n1,2\n',
        list: ['data/nested/out.txt', 'given.csv', 'top.txt'],
        exists: [true, false, false],
        frozen: true,
      },
    });
    expect(await readFile(path.join(run.workDir, 'data/nested/out.txt'), 'utf8')).toBe('hé\u0000llo');
  });

  it('throws the path-rule errors of the Node wrapper as guest errors', async () => {
    const errors = await valueOf(
      [
        'const attempts = [',
        '  () => files.read("../outside.txt"),',
        '  () => files.write("/etc/passwd", "x"),',
        '  () => files.exists("a//b"),',
        '  () => files.read("a\\u0000b"),',
        '  () => files.read(42),',
        '  () => files.write("ok.txt", 42),',
        '  () => files.read("missing.txt"),',
        '];',
        'return attempts.map((attempt) => {',
        '  try { attempt(); return "no error"; } catch (e) { return [e.name, e.message, e instanceof Error]; }',
        '});',
      ].join('\n'),
    );
    const hint = ' (use a relative path like "data/in.csv")';
    expect(errors).toEqual([
      ['TypeError', `files: the path "../outside.txt" has a '.' or '..' segment${hint}`, true],
      ['TypeError', `files: the path "/etc/passwd" is absolute${hint}`, true],
      ['TypeError', `files: the path "a//b" has an empty segment${hint}`, true],
      ['TypeError', `files: the path "a\\u0000b" contains NUL${hint}`, true],
      ['TypeError', 'files: a path must be a string, not number', true],
      ['TypeError', 'files.write: the content must be a string, not number', true],
      ['FilesError', 'files.read: "missing.txt" does not exist', true],
    ]);
  });

  it('never follows a symlink, to a file or through a directory', async () => {
    const outside = path.join(root, `outside-${boxCount + 1}`);
    await mkdir(outside);
    await writeFile(path.join(outside, 'secret.txt'), 'secret');
    const run = await runHost({
      code: [
        'const attempt = (f) => { try { return f(); } catch (e) { return e.name + ": " + e.message; } };',
        'return [',
        '  attempt(() => files.read("link.txt")),',
        '  attempt(() => files.write("link.txt", "overwritten")),',
        '  attempt(() => files.read("dir/secret.txt")),',
        '  attempt(() => files.write("dir/new.txt", "x")),',
        '  files.exists("link.txt"),',
        '  files.list(),',
        '];',
      ].join('\n'),
      prepareWork: async (workDir) => {
        await symlink(path.join(outside, 'secret.txt'), path.join(workDir, 'link.txt'));
        await symlink(outside, path.join(workDir, 'dir'));
      },
    });
    expect(run.report).toEqual({
      status: 'ok',
      value: [
        'FilesError: files.read: "link.txt" is a symbolic link',
        'FilesError: files.write: "link.txt" is a symbolic link',
        'FilesError: files.read: "dir/secret.txt" has a parent that is not a directory',
        'FilesError: files.write: "dir/new.txt" has a parent that is not a directory',
        false,
        [],
      ],
    });
    expect(await readFile(path.join(outside, 'secret.txt'), 'utf8')).toBe('secret');
    expect(await readdir(outside)).toEqual(['secret.txt']);
  });
});

describe('errors', () => {
  it('reports a syntax error with its location and runs nothing', async () => {
    const run = await runHost({ code: 'files.write("ran", "yes");\nlet x = ;' });
    expect(run.report).toMatchObject({ status: 'error', kind: 'exception' });
    expect(run.report).toMatchObject({ message: expect.stringMatching(/^SyntaxError: /) });
    expect(run.stderr).toMatch(/^SyntaxError: .*\n {4}at code\.js:2:\d+\n$/);
    expect(run.exitCode).toBe(1);
    expect(await readdir(run.workDir)).toEqual([]);
  });

  it('does not let the code close the function it runs in', async () => {
    const escapes = [
      '}); files.write("escaped", "1"); (async function () {',
      '}, files.write("escaped", "2"), async function () {',
      '} } files.write("escaped", "3"); function __tandem_gate_guess() {} {{',
      '} files.write("escaped", "4"); async function __tandem_main() {',
    ];
    for (const code of escapes) {
      const run = await runHost({ code });
      expect(run.report, code).toMatchObject({ status: 'error', kind: 'exception' });
      expect(run.report).toMatchObject({ message: expect.stringMatching(/^SyntaxError: /) });
      expect(await readdir(run.workDir), code).toEqual([]);
    }
  });

  it('reports a thrown error with the guest’s stack and no host frames', async () => {
    const run = await runHost({
      code: 'function inner() {\n  throw new TypeError("bad input");\n}\ninner();',
    });
    expect(run.report).toEqual({ status: 'error', kind: 'exception', message: 'TypeError: bad input' });
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toMatch(
      /^TypeError: bad input\n {4}at inner \(code\.js:2:\d+\)\n {4}at __tandem_main/,
    );
    expectNoHostDetails(run.stderr);
  });

  it('reports thrown non-errors and caps long messages', async () => {
    const plain = await runHost({ code: 'throw "plain"' });
    expect(plain.report).toEqual({ status: 'error', kind: 'exception', message: 'Uncaught "plain"' });
    const long = await runHost({ code: 'throw new Error("x".repeat(5000))' });
    expect(long.report).toMatchObject({ kind: 'exception', message: `Error: ${'x'.repeat(1993)}` });
  });

  it('rejects results without a JSON form', async () => {
    const fn = await runHost({ code: 'return function f() {}' });
    const message = 'result is not JSON-serialisable: TypeError: a function has no JSON form';
    expect(fn.report).toEqual({ status: 'error', kind: 'result', message });
    expect(fn.stderr).toBe(`${message}\n`);
    expect(fn.exitCode).toBe(1);
    for (const code of ['return 10n', 'result = { big: 1n }', 'const a = []; a.push(a); return a']) {
      const run = await runHost({ code });
      expect(run.report, code).toMatchObject({
        status: 'error',
        kind: 'result',
        message: expect.stringMatching(/^result is not JSON-serialisable: TypeError: /),
      });
    }
  });

  it('reports a promise that can never settle quickly', async () => {
    const run = await runHost({ code: 'await new Promise(() => {});\nreturn 1', timeoutMs: 20_000 });
    expect(run.report).toMatchObject({
      status: 'error',
      kind: 'exception',
      message: expect.stringContaining('can never settle'),
    });
    expect(run.jobMs).toBeLessThan(10_000);
  });
});

describe('isolation', () => {
  it('gives the guest no host capabilities', async () => {
    const names = [
      'require',
      'process',
      'setTimeout',
      'setInterval',
      'fetch',
      'WebAssembly',
      'module',
      'Buffer',
      'global',
    ];
    const types = await valueOf(`return [${names.map((name) => `typeof ${name}`).join(', ')}]`);
    expect(types).toEqual(names.map(() => 'undefined'));
  });

  it('reaches only the QuickJS global through the constructor chain', async () => {
    const value = await valueOf(
      [
        'const g = (function () {}).constructor("return this")();',
        'const viaArray = [].constructor.constructor("return typeof process")();',
        'const viaAsync = await (async function () {}).constructor("return typeof require")();',
        'return [g === globalThis, typeof g.process, viaArray, viaAsync,',
        '  Object.getOwnPropertyNames(g).filter((name) => /tandem|host|stdout|stderr/i.test(name))];',
      ].join('\n'),
    );
    expect(value).toEqual([true, 'undefined', 'undefined', 'undefined', []]);
  });

  it('ignores Error.prepareStackTrace, so no stack frame hands out host internals', async () => {
    const run = await runHost({
      code: [
        'let frames = 0;',
        'Error.prepareStackTrace = (error, callSites) => { frames += callSites.length; return "hijacked"; };',
        'try { files.read("../x"); } catch {}',
        'console.log(typeof Error.prepareStackTrace, frames, new Error("e").stack === "hijacked");',
        'throw new RangeError("still reported");',
      ].join('\n'),
    });
    expect(run.stdout).toBe('undefined 0 false\n');
    expect(run.report).toEqual({ status: 'error', kind: 'exception', message: 'RangeError: still reported' });
    expect(run.stderr).toMatch(/^RangeError: still reported\n {4}at __tandem_main/);
  });

  it('builds the report the same way after the guest polluted globals and prototypes', async () => {
    const run = await runHost({
      code: [
        'Object.defineProperty(Object.prototype, "status", { get() { return "hacked"; }, configurable: true });',
        'Object.defineProperty(Object.prototype, "1", { get() { return "hacked"; }, configurable: true });',
        'JSON.stringify = () => "{\\"status\\":\\"hacked\\"}";',
        'JSON.parse = () => "hacked";',
        'Symbol.for = () => Symbol("hacked");',
        'Reflect.apply = () => "hacked";',
        'Function.prototype.call = null;',
        'String.prototype.slice = null;',
        'String.prototype.indexOf = null;',
        'Array.isArray = () => false;',
        'Object.freeze = (x) => x;',
        'console.log({ x: 1 }, [1, 2]);',
        'files.write("f.txt", "written");',
        'const proxy = new Proxy({ a: 1 }, { get: (target, key) => target[key] });',
        'return { read: files.read("f.txt"), list: files.list(), proxy };',
      ].join('\n'),
    });
    expect(run.report).toEqual({
      status: 'ok',
      value: { read: 'written', list: ['f.txt'], proxy: { a: 1 } },
    });
    expect(run.stdout).toBe('{ x: 1 } [ 1, 2 ]\n');
  });

  it('still reports when the guest breaks JSON.stringify itself through Array.prototype', async () => {
    const run = await runHost({
      code: 'Object.defineProperty(Array.prototype, "0", { set() { throw new Error("trap"); } });\nreturn { list: [1] }',
    });
    expect(run.report).toMatchObject({ status: 'error', kind: 'result' });
    expect(run.exitCode).toBe(1);
  });
});

describe('limits', () => {
  it('stops an infinite loop at the time limit', async () => {
    const run = await runHost({ code: 'for (;;) {}', timeoutMs: 300 });
    expect(run.report).toEqual({
      status: 'error',
      kind: 'timeout',
      message: 'the program exceeded its time limit of 300 ms',
    });
    expect(run.exitCode).toBe(1);
    expect(run.killed).toBe(false);
  });

  it('stops a loop that catches everything', async () => {
    const run = await runHost({ code: 'for (;;) { try { for (;;) {} } catch {} }', timeoutMs: 300 });
    expect(run.report).toMatchObject({ kind: 'timeout' });
  });

  it('stops a self-requeueing microtask loop, awaited or left running', async () => {
    const awaited = await runHost({
      code: 'function again() { Promise.resolve().then(again); }\nagain();\nawait new Promise(() => {});',
      timeoutMs: 300,
    });
    expect(awaited.report).toMatchObject({ kind: 'timeout' });
    const leftRunning = await runHost({
      code: '(function again() { queueMicrotask(again); })();\nreturn 1',
      timeoutMs: 300,
    });
    expect(leftRunning.report).toMatchObject({ kind: 'timeout' });
  });

  it('stops catastrophic regex backtracking', async () => {
    const run = await runHost({ code: 'return /(a+)+$/.test("a".repeat(40) + "b")', timeoutMs: 300 });
    expect(run.report).toMatchObject({ kind: 'timeout' });
  });

  it('reports memory when the heap outgrows its limit, ArrayBuffers included', async () => {
    for (const code of [
      'const keep = []; for (;;) keep.push(new Array(100000).fill(1.5));',
      'const keep = []; for (;;) keep.push([1, 2, 3, 4, 5, 6, 7, 8]);',
      'const keep = []; for (let i = 0; ; i++) keep.push("x".repeat(100000) + i);',
      'const keep = []; for (;;) keep.push(new ArrayBuffer(1000000));',
      'try { const keep = []; for (;;) keep.push(new Array(100000).fill(1)); } catch (e) { return "caught " + e; }',
    ]) {
      const run = await runHost({ code, memoryBytes: 64 * MIB, timeoutMs: 20_000 });
      expect(run.report, code).toMatchObject({ status: 'error', kind: 'memory' });
      expect(run.exitCode).toBe(1);
    }
  }, 120_000);

  it('turns deep recursion into a catchable RangeError', async () => {
    const uncaught = await runHost({ code: 'function f(n) { return f(n + 1) + 1; }\nf(0);' });
    expect(uncaught.report).toEqual({
      status: 'error',
      kind: 'exception',
      message: 'RangeError: Maximum call stack size exceeded',
    });
    const caught = await valueOf(
      'let depth = 0;\nfunction f() { depth++; f(); }\ntry { f(); } catch (e) { return [e.name, depth > 3000]; }',
    );
    expect(caught).toEqual(['RangeError', true]);
  });

  it('ends JSON.stringify of a million-deep array with a report, never a hang', async () => {
    const run = await runHost({
      code: 'let a = [];\nfor (let i = 0; i < 1e6; i++) a = [a];\nreturn JSON.stringify(a).length;',
      memoryBytes: 0,
      timeoutMs: 20_000,
    });
    expect(run.killed).toBe(false);
    expect(run.exitCode).not.toBe(0);
    expect(run.report).toMatchObject({ status: 'error' });
    expectNoHostDetails(run.stderr);
  }, 60_000);
});
