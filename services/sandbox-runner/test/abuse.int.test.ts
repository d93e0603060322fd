import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { z } from 'zod';

import {
  type SandboxBackend,
  type SandboxLanguage,
  type SandboxLimits,
  type SandboxResult,
} from '../src/sandbox/index.js';
import { backendTracker } from './helpers/backends.js';
import { hostGate } from './helpers/host.js';

// The abuse suite (issue 4): hostile programs against the real bubblewrap backend with per-job cgroups.
// Every case states the outcome it expects; none asserts timings. After every case the job's cgroups are
// gone and the backend still answers a trivial job.

// The suite relies on a root runner with bubblewrap and per-job memory and pids cgroups (the box's uid
// 65534, its pids.max); on a host without them it is skipped, saying why, and with CI=true it fails.
const gate = await hostGate(['bubblewrap', 'root', 'cgroups']);
const SECRET = `tandem-abuse-secret-${randomBytes(12).toString('hex')}`;
const CANARY = `tandem-abuse-canary-${randomBytes(12).toString('hex')}`;
const ABSTRACT = `tandem-abuse-${randomBytes(8).toString('hex')}`;
const SOURCE_FILE = fileURLToPath(new URL('../src/sandbox/bwrap-backend.ts', import.meta.url));
const SANDBOX_UID = process.getuid?.() === 0 ? 65534 : process.getuid?.();
const MAX_PROCESSES = 64;
/** Processes a job may hold at once: the guest's RLIMIT_NPROC plus bwrap's own. */
const PIDS_LIMIT = MAX_PROCESSES + 4;
const LIMITS: SandboxLimits = { timeoutMs: 10_000, maxOutputBytes: 64 * 1024 };
const RUNAWAY: Partial<SandboxLimits> = { timeoutMs: 2_000 };
/** What `/` of the box may hold (the interpreter's directories, the binds and the mounts). */
const BOX_ROOT = [
  'box',
  'dev',
  'etc',
  'lib',
  'lib32',
  'lib64',
  'libx32',
  'proc',
  'qjs',
  'tmp',
  'usr',
  'work',
];
/** The box's whole environment: the four fixed variables, and PWD (set by bwrap for `--chdir`). */
const BOX_ENV = ['HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR'];

/** What every guest gets as `input`: where the host's bait is. */
interface Bait {
  port: number;
  hosts: string[];
  canary: string;
  source: string;
  scratch: string;
  /** The test process's host pid. */
  hostPid: number;
  /** A host listener in the abstract Unix socket namespace (name without the leading NUL). */
  abstract: string;
}

let scratchRoot: string;
let backend: SandboxBackend;
let server: Server;
let abstractServer: Server;
let connections = 0;
let bait: Bait;

function run(
  language: SandboxLanguage,
  code: string,
  limits: Partial<SandboxLimits> = {},
): Promise<SandboxResult> {
  return backend.run({ language, code, input: bait, limits: { ...LIMITS, ...limits } });
}

/** Everything of a result a secret could leak through, as text. */
function resultText(result: SandboxResult): string {
  return [
    result.stdout,
    result.stderr,
    JSON.stringify(result.value) ?? '',
    result.errorMessage ?? '',
    ...result.files.map((file) => `${file.path}\n${file.content.toString('utf8')}`),
  ].join('\n');
}

/**
 * The host pid of a running box interpreter of this test process: started as `interpreter`, with `marker`
 * in its command line (not bwrap, whose command line names both but whose root is the host's).
 */
async function boxInterpreterPid(interpreter: string, marker: string): Promise<number | null> {
  for (const hierarchy of ['/sys/fs/cgroup/pids/tandem-sandbox', '/sys/fs/cgroup/tandem-sandbox']) {
    const jobs = (await readdir(hierarchy).catch(() => [])).filter((name) =>
      name.startsWith(`job-${process.pid}-`),
    );
    for (const job of jobs) {
      const procs = await readFile(path.join(hierarchy, job, 'cgroup.procs'), 'utf8').catch(() => '');
      for (const pid of procs.split('\n').filter((line) => line !== '')) {
        const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
        if (argv[0] === interpreter && argv.some((arg) => arg.includes(marker))) return Number(pid);
      }
    }
  }
  return null;
}

function portOf(listener: Server): number {
  const address = listener.address();
  if (address === null || typeof address === 'string') throw new Error('server has no port');
  return address.port;
}

const Attempts = z.record(z.string(), z.string());

function okValue(result: SandboxResult): unknown {
  expect(result.outcome, `${result.errorMessage ?? ''}\n${result.stderr}`).toBe('ok');
  return result.value;
}

/** The guest reports `{ what: 'ERR:<code>' | <what it got> }`; every attempt must have failed. */
function expectAllFailed(result: SandboxResult): Record<string, string> {
  const attempts = Attempts.parse(okValue(result));
  expect(Object.keys(attempts).length).toBeGreaterThan(0);
  for (const [what, outcome] of Object.entries(attempts)) {
    expect(outcome.startsWith('ERR:'), `${what} -> ${outcome}`).toBe(true);
  }
  return attempts;
}

function expectOutcome(outcome: SandboxResult['outcome']): (result: SandboxResult) => void {
  return (result) => expect(result.outcome, `${result.errorMessage ?? ''}\n${result.stderr}`).toBe(outcome);
}

function expectError(pattern: RegExp): (result: SandboxResult) => void {
  return (result) => {
    expect(result.outcome).toBe('error');
    expect(`${result.errorMessage ?? ''}\n${result.stderr}`).toMatch(pattern);
  };
}

/** A number the guest counted, below the job's pids limit. */
function expectHeldToPids(result: SandboxResult): void {
  const count = z.number().int().nonnegative().parse(okValue(result));
  expect(count).toBeLessThan(PIDS_LIMIT);
}

// Guest helpers. `attempt` turns a throw into 'ERR:<code>' and a success into what it returned (or 'OK').
const PY = String.raw`
import os, sys
def attempt(f):
    try:
        value = f()
        return 'OK' if value is None else str(value)
    except BaseException as error:
        return 'ERR:' + type(error).__name__
def read(path):
    with open(path, 'rb') as file:
        return file.read().decode('utf-8', 'replace')
`;
import { leftoverJobCgroups } from './helpers/cgroups.js';

const { trackedBackend, drainBackends, closeBackends } = backendTracker();

interface AbuseCase {
  name: string;
  language: SandboxLanguage;
  code: string;
  limits?: Partial<SandboxLimits>;
  /** The only architecture the case can run on (its syscall numbers are that architecture's). */
  arch?: NodeJS.Architecture;
  expect: (result: SandboxResult) => void | Promise<void>;
}

// JavaScript runs in QuickJS inside a Node host inside the box: guest code has no `require`, `process`,
// file system, network, timers or WebAssembly even before the OS boundary. These cases try every route a
// QuickJS guest has — the globals, the `files` API, the engine itself — and the engine's own limits.
const JS = String.raw`
const attempt = (f) => {
  try {
    const value = f();
    return value === undefined ? 'OK' : String(value);
  } catch (error) {
    return 'ERR:' + String((error && error.name) || error);
  }
};
const attemptAsync = async (f) => {
  try {
    const value = await f();
    return value === undefined ? 'OK' : String(value);
  } catch (error) {
    return 'ERR:' + String((error && error.name) || error);
  }
};
`;

const HOST_CAPABILITIES = [
  'require',
  'process',
  'module',
  'Buffer',
  'fetch',
  'XMLHttpRequest',
  'WebSocket',
  'setTimeout',
  'setInterval',
  'setImmediate',
  'WebAssembly',
  'Deno',
  'Bun',
  'std',
  'os',
  'scriptArgs',
  'print',
];

const javascriptCases: AbuseCase[] = [
  {
    name: 'host capabilities are absent: require, process, fetch, timers, WebAssembly, std/os',
    language: 'javascript',
    code:
      JS +
      `const out = {}; for (const name of ${JSON.stringify(HOST_CAPABILITIES)}) out[name] = typeof globalThis[name]; return out;`,
    expect: (result) => {
      const value = z.record(z.string(), z.string()).parse(okValue(result));
      for (const name of HOST_CAPABILITIES) expect(value[name], name).toBe('undefined');
    },
  },
  {
    name: 'dynamic import of host modules (fs, node:child_process, std, os, a file path) is refused',
    language: 'javascript',
    code:
      JS +
      String.raw`const out = {};
for (const name of ['fs', 'node:fs', 'node:child_process', 'std', 'os', '/etc/passwd', input.source, 'data:text/javascript,export default 1'])
  out[name] = await attemptAsync(() => import(name).then(() => 'imported'));
return out;`,
    expect: expectAllFailed,
  },
  {
    name: 'reads host files through files.read (absolute, .., encoded, the runner source, the canary)',
    language: 'javascript',
    code:
      JS +
      String.raw`const out = {};
for (const p of ['/etc/passwd', '/etc/shadow', '../etc/passwd', '../../box/code.js', '%2e%2e/etc/passwd', input.canary, input.source, '/proc/1/environ', 'a/../../etc/passwd', '.'])
  out[p] = attempt(() => files.read(p));
return out;`,
    expect: expectAllFailed,
  },
  {
    name: 'writes outside the working directory through files.write (absolute, .., /box, /tmp)',
    language: 'javascript',
    code:
      JS +
      String.raw`const out = {};
for (const p of ['/usr/abuse', '/etc/abuse', '../abuse', '/box/code.js', '/tmp/abuse', 'x/../../abuse', input.scratch + '/abuse', ''])
  out[p] = attempt(() => files.write(p, 'x'));
out.nonString = attempt(() => files.write('ok.txt', { toString() { return 'x'; } }));
return out;`,
    expect: (result) => {
      expectAllFailed(result);
      for (const host of ['/usr/abuse', '/etc/abuse', '/abuse', path.join(bait.scratch, 'abuse')]) {
        expect(existsSync(host), host).toBe(false);
      }
    },
  },
  {
    name: 'the global object holds no secret and no host function',
    language: 'javascript',
    code: String.raw`const names = Reflect.ownKeys(globalThis).map(String);
const text = names.join(',') + JSON.stringify(Object.getOwnPropertyNames(globalThis).map((n) => { try { return typeof globalThis[n] === 'function' ? globalThis[n].toString() : String(globalThis[n]); } catch { return 'throws'; } }));
return { names, text };`,
    expect: (result) => {
      const value = z.object({ names: z.array(z.string()), text: z.string() }).parse(okValue(result));
      expect(value.text).not.toContain(SECRET);
      expect(value.text).not.toContain('/box');
      for (const name of value.names) expect(name.startsWith('__'), name).toBe(false);
    },
  },
  {
    name: "constructor-chain escape this.constructor.constructor('return this')() gives only the engine's global",
    language: 'javascript',
    code: String.raw`const g = this === undefined ? (function () {}).constructor('return this')() : this.constructor.constructor('return this')();
const viaAsync = await (async function () {}).constructor('return typeof process')();
const viaGenerator = (function* () {}).constructor('return typeof require')().next().value;
return [typeof g.process, typeof g.require, viaAsync, viaGenerator, typeof Function('return this')().process];`,
    expect: (result) =>
      expect(okValue(result)).toEqual(['undefined', 'undefined', 'undefined', 'undefined', 'undefined']),
  },
  {
    name: 'Error.prepareStackTrace and captureStackTrace reach no host frame',
    language: 'javascript',
    code: String.raw`Error.prepareStackTrace = (_error, frames) => frames.map((frame) => frame.getThis && frame.getThis());
let stack = '';
try { null.x; } catch (error) { stack = String(error.stack); }
const captured = {};
if (typeof Error.captureStackTrace === 'function') Error.captureStackTrace(captured);
return { stack, captured: String(captured.stack) };`,
    expect: (result) => {
      const text = JSON.stringify(okValue(result));
      expect(text).not.toMatch(/node:internal|host\.cjs|\/qjs\//);
    },
  },
  {
    name: 'a Proxy result that throws on every trap fails only its own report',
    language: 'javascript',
    code: String.raw`const trap = () => { throw new Error('trap'); };
return new Proxy({}, { get: trap, ownKeys: trap, getOwnPropertyDescriptor: trap, has: trap, getPrototypeOf: trap });`,
    expect: (result) => {
      expect(['error']).toContain(result.outcome);
    },
  },
  {
    name: 'Proxy and Reflect over globalThis and files find nothing to escalate',
    language: 'javascript',
    code: String.raw`const seen = [];
const spy = new Proxy(globalThis, { get(target, key, receiver) { seen.push(String(key)); return Reflect.get(target, key, receiver); } });
const keys = Reflect.ownKeys(files).map(String);
let frozen;
try { files.read = () => 'forged'; frozen = files.read === undefined ? 'deleted' : 'unchanged'; } catch (error) { frozen = 'ERR:' + error.name; }
return { keys: keys.sort(), frozen, hidden: typeof spy.process };`,
    expect: (result) => {
      const value = z
        .object({ keys: z.array(z.string()), frozen: z.string(), hidden: z.string() })
        .parse(okValue(result));
      expect(value.keys).toEqual(['exists', 'list', 'read', 'write']);
      expect(value.hidden).toBe('undefined');
    },
  },
  {
    name: "a thrown value with Symbol.for('nodejs.util.inspect.custom') and a throwing toString",
    language: 'javascript',
    code: String.raw`const evil = { [Symbol.for('nodejs.util.inspect.custom')]() { throw new Error('inspect'); }, toString() { throw new Error('toString'); }, get name() { throw new Error('name'); }, get message() { throw new Error('message'); } };
throw evil;`,
    expect: (result) => expect(result.outcome).toBe('error'),
  },
  {
    name: 'a thrown value whose toString never returns ends at the time limit at worst',
    language: 'javascript',
    code: String.raw`throw { toString() { for (;;) {} }, get stack() { for (;;) {} } };`,
    limits: RUNAWAY,
    expect: (result) => expect(['error', 'timeout']).toContain(result.outcome),
  },
  {
    name: 'sabotaging JSON.stringify, Object.prototype.toJSON and console breaks nothing but the guest',
    language: 'javascript',
    code: String.raw`JSON.stringify = () => '"forged"';
JSON.parse = () => 'forged';
Object.prototype.toJSON = function () { return 'polluted'; };
console.log = () => { throw new Error('no'); };
return 1;`,
    expect: (result) => {
      // Either the host's captured serialiser ignores the sabotage, or the report fails: never a forged value.
      if (result.outcome === 'ok') expect(result.value).not.toBe('forged');
      else expect(result.outcome).toBe('error');
    },
  },
  {
    name: 'prototype pollution and globals do not reach the next job',
    language: 'javascript',
    code: String.raw`Object.prototype.polluted = 'yes';
Array.prototype.push = function () { return 'hijacked'; };
globalThis.leftover = 'yes';
files.write('leftover', 'x');
return 1;`,
    expect: async (result) => {
      expect(okValue(result)).toBe(1);
      const next = await run(
        'javascript',
        String.raw`return [typeof ({}).polluted, typeof globalThis.leftover, [1].push(2), files.exists('leftover')];`,
      );
      expect(okValue(next)).toEqual(['undefined', 'undefined', 2, false]);
    },
  },
  {
    name: 'an infinite loop',
    language: 'javascript',
    code: 'for (;;) {}',
    limits: RUNAWAY,
    expect: expectOutcome('timeout'),
  },
  {
    name: 'an infinite loop that catches everything, in finally blocks too',
    language: 'javascript',
    code: String.raw`for (;;) { try { for (;;) {} } catch (error) { continue; } finally { for (;;) { try { for (;;) {} } catch {} } } }`,
    limits: RUNAWAY,
    expect: expectOutcome('timeout'),
  },
  {
    name: 'a microtask loop (Promise.resolve().then recursion)',
    language: 'javascript',
    code: String.raw`const spin = () => Promise.resolve().then(spin); spin(); await new Promise(() => spin());`,
    limits: RUNAWAY,
    expect: expectOutcome('timeout'),
  },
  {
    name: 'an async function that awaits itself forever',
    language: 'javascript',
    code: String.raw`const again = async () => { await null; return again(); }; return await again();`,
    limits: RUNAWAY,
    expect: (result) => expect(['timeout', 'error']).toContain(result.outcome),
  },
  {
    name: 'Atomics.wait on a SharedArrayBuffer that nobody notifies',
    language: 'javascript',
    code: String.raw`if (typeof SharedArrayBuffer !== 'function' || typeof Atomics !== 'object') return 'no shared memory';
return Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);`,
    limits: RUNAWAY,
    expect: (result) => {
      // Blocking is refused, or the wait is stopped at the time limit; never a hang past it.
      expect(['ok', 'error', 'timeout']).toContain(result.outcome);
      if (result.outcome === 'ok') expect(result.value).not.toBe('timed-out');
    },
  },
  {
    name: 'a WebAssembly infinite loop cannot even start (no WebAssembly in the engine)',
    language: 'javascript',
    code: String.raw`const bytes = new Uint8Array([0,97,115,109,1,0,0,0,1,4,1,96,0,0,3,2,1,0,7,5,1,1,102,0,0,10,9,1,7,0,3,64,12,0,11,11]);
const module = await WebAssembly.instantiate(bytes);
module.instance.exports.f();`,
    limits: RUNAWAY,
    expect: expectError(/WebAssembly/),
  },
  {
    name: 'ReDoS: a catastrophic regular expression',
    language: 'javascript',
    code: String.raw`return /^(a+)+$/.test('a'.repeat(64) + 'b');`,
    limits: RUNAWAY,
    expect: expectOutcome('timeout'),
  },
  {
    name: 'a memory bomb of objects',
    language: 'javascript',
    code: String.raw`const keep = []; for (;;) keep.push({ a: keep.length, b: 'x'.repeat(64) });`,
    limits: { ...RUNAWAY, timeoutMs: 20_000, memoryMb: 128 },
    expect: expectOutcome('memory_limit'),
  },
  {
    name: "a memory bomb of ArrayBuffers (not counted by the engine's own limit)",
    language: 'javascript',
    code: String.raw`const keep = []; for (;;) keep.push(new Uint8Array(16 * 1024 * 1024).fill(1));`,
    limits: { ...RUNAWAY, timeoutMs: 20_000, memoryMb: 128 },
    expect: expectOutcome('memory_limit'),
  },
  {
    name: 'a string-doubling memory bomb',
    language: 'javascript',
    code: String.raw`let s = 'x'; for (;;) s = s + s;`,
    limits: { ...RUNAWAY, timeoutMs: 20_000, memoryMb: 128 },
    expect: (result) => expect(['memory_limit', 'error']).toContain(result.outcome),
  },
  {
    name: '100 MB of stdout',
    language: 'javascript',
    code: String.raw`const line = 'x'.repeat(1 << 20); for (let i = 0; i < 100; i++) console.log(line);`,
    expect: (result) => {
      expect(result.outcome).toBe('output_limit');
      expect(result.stdoutTruncated).toBe(true);
      expect(result.stdout.length).toBeLessThanOrEqual(LIMITS.maxOutputBytes);
    },
  },
  {
    name: 'a 6 MB result (over the 4 MiB result cap)',
    language: 'javascript',
    code: String.raw`return 'x'.repeat(6 * 1024 * 1024);`,
    expect: expectOutcome('output_limit'),
  },
  {
    name: 'deep recursion in guest code',
    language: 'javascript',
    code: String.raw`const down = (n) => down(n + 1) + 1; return down(0);`,
    expect: expectError(/stack|recursion|RangeError|InternalError/i),
  },
  {
    name: 'deep recursion in the engine: JSON.stringify of a very deep array',
    language: 'javascript',
    code: String.raw`let deep = []; for (let i = 0; i < 1e6; i++) deep = [deep]; return JSON.stringify(deep).length;`,
    limits: { ...RUNAWAY, timeoutMs: 20_000 },
    expect: (result) => expect(['error', 'memory_limit', 'timeout']).toContain(result.outcome),
  },
  {
    name: 'a very deep result breaks only its own report',
    language: 'javascript',
    code: String.raw`let deep = []; for (let i = 0; i < 1e6; i++) deep = [deep]; return deep;`,
    limits: { ...RUNAWAY, timeoutMs: 20_000 },
    expect: (result) => expect(['error', 'memory_limit', 'timeout']).toContain(result.outcome),
  },
  {
    name: 'a promise that can never settle is reported at once, not at the time limit',
    language: 'javascript',
    code: String.raw`await new Promise(() => {}); return 1;`,
    expect: expectError(/never|settle/i),
  },
  {
    name: 'eval and new Function run inside the engine only',
    language: 'javascript',
    code: String.raw`return [eval('typeof require'), new Function('return typeof process')(), (0, eval)('this === globalThis')];`,
    expect: (result) => expect(okValue(result)).toEqual(['undefined', 'undefined', true]),
  },
  {
    name: 'filling /work through files.write stops at its tmpfs size, as a guest error',
    language: 'javascript',
    code:
      JS +
      String.raw`const chunk = 'x'.repeat(8 << 20); let written = 0; let error = 'none';
for (let i = 0; i < 64; i++) { const outcome = attempt(() => files.write('fill-' + i, chunk)); if (outcome.startsWith('ERR:')) { error = outcome; break; } written += 1; }
return { written, error };`,
    limits: { timeoutMs: 20_000, maxFiles: 0 },
    expect: (result) => {
      const value = z.object({ written: z.number(), error: z.string() }).parse(okValue(result));
      expect(value.error.startsWith('ERR:')).toBe(true);
      expect(value.written).toBeLessThan(64);
    },
  },
];

const pythonCases: AbuseCase[] = [
  {
    name: 'reads host files (/etc/shadow, /etc/passwd, a world-readable canary, the runner source)',
    language: 'python',
    code:
      PY +
      String.raw`result = {k: attempt(lambda p=p: read(p)) for k, p in {'shadow': '/etc/shadow', 'passwd': '/etc/passwd', 'canary': input['canary'], 'source': input['source'], 'scratch': input['scratch']}.items()}`,
    expect: expectAllFailed,
  },
  {
    name: 'lists /root, /home and the runner source tree',
    language: 'python',
    code:
      PY +
      String.raw`result = {p: attempt(lambda p=p: ','.join(os.listdir(p))) for p in ['/root', '/home', '/var', '/run', os.path.dirname(input['source'])]}`,
    expect: expectAllFailed,
  },
  {
    name: 'reads /proc/1/environ and its own environment: no secret, only the four fixed variables',
    language: 'python',
    code:
      PY +
      String.raw`result = {'environ1': attempt(lambda: read('/proc/1/environ')), 'self': sorted(os.environ)}`,
    expect: (result) => {
      const value = z.object({ environ1: z.string(), self: z.array(z.string()) }).parse(okValue(result));
      expect(value.self).toEqual(BOX_ENV);
      expect(value.environ1.startsWith('ERR:') || !value.environ1.includes('TANDEM')).toBe(true);
    },
  },
  {
    name: 'writes outside the working directory (/usr, /etc, /box, /, /dev, /proc)',
    language: 'python',
    code:
      PY +
      String.raw`def write(p):
    with open(p, 'w') as f:
        f.write('x')
result = {p: attempt(lambda p=p: write(p)) for p in ['/usr/abuse', '/usr/bin/python3', '/etc/abuse', '/box/abuse', '/box/code.py', '/abuse', '/dev/abuse', '/proc/abuse', input['scratch'] + '/abuse']}
result['mkdir'] = attempt(lambda: os.mkdir('/usr/abuse-dir'))
result['chmod'] = attempt(lambda: os.chmod('/usr/bin', 0o777))
result['rename'] = attempt(lambda: os.rename('/box/code.py', '/work/code.py'))`,
    expect: (result) => {
      expectAllFailed(result);
      for (const host of [
        '/usr/abuse',
        '/etc/abuse',
        '/abuse',
        '/usr/abuse-dir',
        path.join(bait.scratch, 'abuse'),
      ]) {
        expect(existsSync(host), host).toBe(false);
      }
    },
  },
  {
    name: 'socket: TCP to host listeners (127.0.0.1 and the host addresses), UDP, raw sockets',
    language: 'python',
    code:
      PY +
      String.raw`import socket
def connect(host):
    s = socket.create_connection((host, input['port']), timeout=1.5)
    s.close()
result = {host: attempt(lambda host=host: connect(host)) for host in ['127.0.0.1', 'localhost'] + input['hosts']}
result['raw'] = attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
result['packet'] = attempt(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
result['udp'] = attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('1.1.1.1', 53)))`,
    expect: (result) => {
      expectAllFailed(result);
      expect(connections).toBe(0);
    },
  },
  {
    name: 'socket: connects to a host abstract Unix socket',
    language: 'python',
    code:
      PY +
      String.raw`import socket
def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.5)
    s.connect('\0' + input['abstract'])
    s.close()
result = {'abstract': attempt(connect)}`,
    expect: (result) => {
      expectAllFailed(result);
      expect(connections).toBe(0);
    },
  },
  {
    name: 'looks up DNS names',
    language: 'python',
    code:
      PY +
      String.raw`import socket
result = {name: attempt(lambda name=name: socket.getaddrinfo(name, 80)) for name in ['example.com', 'registry.npmjs.org']}
result['byaddr'] = attempt(lambda: socket.gethostbyaddr('1.1.1.1'))`,
    expect: expectAllFailed,
  },
  {
    // Before issue 11 this ran through /bin/sh; the box has no shell any more (see the hole 8 cases below).
    name: 'the box root holds only its own entries, no host file is readable, and the guest is uid 65534',
    language: 'python',
    code:
      PY +
      String.raw`result = {'shadow': attempt(lambda: read('/etc/shadow')), 'canary': attempt(lambda: read(input['canary'])), 'source': attempt(lambda: read(input['source'])), 'root': ' '.join(sorted(os.listdir('/'))), 'uid': str(os.getuid())}`,
    expect: (result) => {
      const value = z
        .object({
          shadow: z.string(),
          canary: z.string(),
          source: z.string(),
          root: z.string(),
          uid: z.string(),
        })
        .parse(okValue(result));
      expect(value.shadow).toMatch(/^ERR:/);
      expect(value.canary).toMatch(/^ERR:/);
      expect(value.source).toMatch(/^ERR:/);
      for (const entry of value.root.split(/\s+/)) expect(BOX_ROOT).toContain(entry);
      expect(value.uid).toBe(String(SANDBOX_UID));
    },
  },
  {
    name: 'os.system reaches neither host files nor the network',
    language: 'python',
    code:
      PY +
      String.raw`def system(script):
    status = os.system(script)
    return 'OK' if status == 0 else 'ERR:status ' + str(status)
result = {
    'canary': system('cat ' + input['canary'] + ' > /work/leak'),
    'shadow': system('cp /etc/shadow /work/shadow'),
    'tcp': system('/usr/bin/bash -c "echo hi > /dev/tcp/127.0.0.1/' + str(input['port']) + '"'),
}
for host in input['hosts']:
    result['tcp ' + host] = system('/usr/bin/bash -c "echo hi > /dev/tcp/' + host + '/' + str(input['port']) + '"')`,
    expect: (result) => {
      expectAllFailed(result);
      expect(connections).toBe(0);
    },
  },
  // Hole 8 (issue 11): a compute box needs no programs but its interpreter. Every way Python has to start
  // one must fail, and the box must hold no shell, no coreutils and no other system binary to start.
  {
    name: 'starting a program fails: subprocess, os.system, os.execv, ctypes system(), os.posix_spawn, _posixsubprocess.fork_exec',
    language: 'python',
    code:
      PY +
      String.raw`import subprocess
def status(code):
    return 'OK' if code == 0 else 'ERR:status ' + str(code)
def run_sh():
    done = subprocess.run(['/bin/sh', '-c', 'echo hi'], capture_output=True, text=True)
    return 'OK' if done.returncode == 0 and done.stdout.strip() == 'hi' else 'ERR:status ' + str(done.returncode)
def in_child(start):
    # exec replaces the process: try it in a child, which reports a failure through its exit code.
    pid = os.fork()
    if pid == 0:
        try:
            start()
        finally:
            os._exit(111)
    return status(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
def spawn(path):
    pid = os.posix_spawn(path, [path], {})
    return status(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
def fork_exec(path):
    import _posixsubprocess
    errpipe_read, errpipe_write = os.pipe()
    pid = _posixsubprocess.fork_exec([path], [os.fsencode(path)], True, (errpipe_write,), None, None, -1, -1, -1, -1, -1, -1, errpipe_read, errpipe_write, False, False, -1, None, None, None, -1, None, False)
    os.close(errpipe_write)
    failure = os.read(errpipe_read, 1000)
    os.close(errpipe_read)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return 'ERR:' + failure.decode('ascii', 'replace') if failure else status(code)
def libc_system():
    import ctypes
    return status(ctypes.CDLL(None).system(b'id > /work/id.txt'))
result = {
    'subprocess /bin/sh': attempt(run_sh),
    'subprocess env': attempt(lambda: status(subprocess.run(['/usr/bin/env']).returncode)),
    'os.system': attempt(lambda: status(os.system('id > /work/id.txt'))),
    'os.popen': attempt(lambda: 'ERR:empty' if os.popen('echo hi').read() == '' else 'OK'),
    'os.execv /bin/ls': attempt(lambda: in_child(lambda: os.execv('/bin/ls', ['/bin/ls', '/']))),
    'os.execv /usr/bin/ls': attempt(lambda: in_child(lambda: os.execv('/usr/bin/ls', ['/usr/bin/ls', '/']))),
    'ctypes system()': attempt(libc_system),
    'os.posix_spawn /bin/sh': attempt(lambda: spawn('/bin/sh')),
    '_posixsubprocess.fork_exec /bin/sh': attempt(lambda: fork_exec('/bin/sh')),
}`,
    expect: (result) => {
      expectAllFailed(result);
      expect(result.files.map((file) => file.path)).toEqual([]);
    },
  },
  {
    name: 'the box holds no shell and no system binary: /bin/sh, /usr/bin/env, /bin/ls and the launcher tools are absent',
    language: 'python',
    code: String.raw`import os
names = ['/bin/sh', '/usr/bin/sh', '/bin/bash', '/usr/bin/bash', '/bin/dash', '/usr/bin/env', '/bin/ls', '/usr/bin/ls',
         '/usr/bin/id', '/usr/bin/cat', '/usr/bin/perl', '/usr/bin/node', '/usr/bin/prlimit', '/usr/bin/setpriv',
         '/usr/bin/mount', '/usr/bin/bwrap', '/sbin/ldconfig', '/usr/sbin/ldconfig', '/usr/bin/busybox']
result = {name: os.path.exists(name) for name in names}`,
    expect: (result) => {
      const value = z.record(z.string(), z.boolean()).parse(okValue(result));
      for (const [name, exists] of Object.entries(value)) expect(exists, name).toBe(false);
    },
  },
  {
    name: 'every executable file the box holds is the interpreter, its loader or a shared library',
    language: 'python',
    code: String.raw`import os, stat
found = []
for top in ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/etc', '/box', '/opt', '/root', '/home']:
    for base, dirs, files in os.walk(top):
        for name in files:
            path = os.path.join(base, name)
            try:
                info = os.stat(path)
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode) or not info.st_mode & 0o111:
                continue
            with open(path, 'rb') as file:
                head = file.read(256)
            if head.startswith(b'#!'):
                # A script starts only through the interpreter its first line names.
                program = head[2:].split(b'\n')[0].split()[0].decode('utf-8', 'replace')
                found.append(path + ' -> ' + program + (' (present)' if os.path.exists(program) else ' (absent)'))
            elif head.startswith(b'\x7fELF'):
                found.append(path)
result = found`,
    expect: (result) => {
      const found = z.array(z.string()).parse(okValue(result));
      for (const entry of found) {
        if (entry.includes(' -> ')) {
          // A script whose interpreter is missing cannot be started; one naming Python can run only as Python.
          expect(
            entry.endsWith('(absent)') || /-> \/usr\/bin\/python3(\.\d+)? \(present\)$/.test(entry),
            entry,
          ).toBe(true);
        } else {
          expect(
            /^\/usr\/bin\/python3(\.\d+)?$/.test(entry) ||
              /\.so(\.[\d.]+)?$/.test(entry) ||
              /\/ld-linux[^/]*\.so/.test(entry),
            entry,
          ).toBe(true);
        }
      }
    },
  },
  {
    name: 'the interpreter cannot start itself again or a copy of itself written to /tmp or /work',
    language: 'python',
    code:
      PY +
      String.raw`import shutil, subprocess
def copy_to(path):
    shutil.copyfile(sys.executable, path)
    os.chmod(path, 0o755)
    return path
def run(path):
    done = subprocess.run([path, '-I', '-S', '-c', 'print(6 * 7)'], capture_output=True, text=True)
    return 'OK' if done.stdout.strip() == '42' else 'ERR:exit ' + str(done.returncode)
result = {
    'itself': attempt(lambda: run(sys.executable)),
    'copy in /tmp': attempt(lambda: run(copy_to('/tmp/python-copy'))),
    'copy in /work': attempt(lambda: run(copy_to('/work/python-copy'))),
}
os.remove('/work/python-copy') if os.path.exists('/work/python-copy') else None`,
    expect: expectAllFailed,
  },
  {
    name: 'a fork bomb is held to the pids limit and dies with the job',
    language: 'python',
    code: String.raw`import os
while True:
    try:
        os.fork()
    except OSError:
        pass`,
    limits: RUNAWAY,
    expect: expectOutcome('timeout'),
  },
  {
    name: 'forks sleeping children until it cannot: held to the pids limit',
    language: 'python',
    code: String.raw`import os, time
children = 0
for _ in range(500):
    try:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        children += 1
    except OSError:
        break
result = children`,
    limits: { timeoutMs: 5_000 },
    expect: expectHeldToPids,
  },
  {
    name: 'a thread bomb is held to the pids limit',
    language: 'python',
    code: String.raw`import threading, time
threads = 0
for _ in range(500):
    try:
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        threads += 1
    except RuntimeError:
        break
result = threads`,
    limits: { timeoutMs: 5_000 },
    expect: expectHeldToPids,
  },
  {
    name: 'a double-forked setsid daemon outlives the guest only until the job ends',
    language: 'python',
    code: String.raw`import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(120)
    os._exit(0)
os.wait()
result = 'left a daemon'`,
    expect: (result) => expect(okValue(result)).toBe('left a daemon'),
  },
  {
    name: 'an infinite loop',
    language: 'python',
    code: 'while True:\n    pass',
    limits: RUNAWAY,
    expect: expectOutcome('timeout'),
  },
  {
    name: 'an infinite loop that catches BaseException',
    language: 'python',
    code: String.raw`while True:
    try:
        while True:
            pass
    except BaseException:
        pass`,
    limits: RUNAWAY,
    expect: expectOutcome('timeout'),
  },
  {
    name: 'an infinite loop with signal handlers ignoring every catchable signal',
    language: 'python',
    code: String.raw`import signal
for s in signal.valid_signals():
    try:
        signal.signal(s, signal.SIG_IGN)
    except (OSError, ValueError):
        pass
while True:
    try:
        pass
    except BaseException:
        pass`,
    limits: RUNAWAY,
    expect: expectOutcome('timeout'),
  },
  {
    name: 'ReDoS: a catastrophic regular expression',
    language: 'python',
    code: String.raw`import re
result = bool(re.match(r'^(a+)+$', 'a' * 64 + '!'))`,
    limits: RUNAWAY,
    expect: expectOutcome('timeout'),
  },
  {
    name: 'a memory bomb of lists',
    language: 'python',
    code: String.raw`keep = []
while True:
    keep.append([0] * 1000)`,
    limits: { timeoutMs: 10_000, memoryMb: 96 },
    expect: expectOutcome('memory_limit'),
  },
  {
    // The MemoryError of a small-object bomb may carry no traceback; it must still be reported as such.
    name: 'a memory bomb of small dicts',
    language: 'python',
    code: String.raw`keep = []
while True:
    keep.append({'a': len(keep), 'b': [1, 2, 3], 'c': 'x' * 100})`,
    limits: { timeoutMs: 10_000, memoryMb: 96 },
    expect: expectOutcome('memory_limit'),
  },
  {
    name: 'a memory bomb of bytearrays',
    language: 'python',
    code: String.raw`keep = []
while True:
    keep.append(bytearray(8 * 1024 * 1024))`,
    limits: { timeoutMs: 10_000, memoryMb: 96 },
    expect: expectOutcome('memory_limit'),
  },
  {
    name: 'a memory bomb spread over forked children (each under its own RLIMIT_AS)',
    language: 'python',
    code: String.raw`import os, time
pids = []
for _ in range(6):
    pid = os.fork()
    if pid == 0:
        block = bytearray(40 * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(5)
        os._exit(0)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
result = 'all children done'`,
    limits: { timeoutMs: 10_000, memoryMb: 128 },
    expect: expectOutcome('memory_limit'),
  },
  {
    name: '100 MB of stdout',
    language: 'python',
    code: String.raw`import sys
chunk = 'x' * (1024 * 1024)
for _ in range(100):
    sys.stdout.write(chunk)
result = 'done'`,
    limits: { timeoutMs: 10_000, maxOutputBytes: 1024 * 1024 },
    expect: (result) => {
      expect(result.outcome).toBe('output_limit');
      expect(result.stdout.length).toBeLessThanOrEqual(1024 * 1024);
    },
  },
  {
    name: 'a flood of stderr',
    language: 'python',
    code: String.raw`import sys
while True:
    sys.stderr.write('e' * 65536)`,
    limits: { timeoutMs: 10_000, maxOutputBytes: 1024 * 1024 },
    expect: expectOutcome('output_limit'),
  },
  {
    name: 'a 6 MB result (over the 4 MiB result cap)',
    language: 'python',
    code: String.raw`result = 'y' * (6 * 1024 * 1024)`,
    expect: expectOutcome('output_limit'),
  },
  {
    name: 'deep recursion in guest code (RecursionError)',
    language: 'python',
    code: String.raw`def f(n):
    return f(n + 1) + 1
result = f(0)`,
    expect: expectError(/RecursionError/),
  },
  {
    name: 'deep recursion in the interpreter: json.dumps of a very deep list',
    language: 'python',
    code: String.raw`import json
a = []
for _ in range(1000000):
    a = [a]
result = len(json.dumps(a))`,
    expect: expectError(/RecursionError/),
  },
  {
    name: 'a very deep result breaks only its own report',
    language: 'python',
    code: String.raw`a = []
for _ in range(1000000):
    a = [a]
result = a`,
    expect: expectError(/not JSON-serialisable/),
  },
  {
    name: 'a huge recursion limit overflows the C stack: the job ends as an error',
    language: 'python',
    code: String.raw`import sys
sys.setrecursionlimit(10 ** 8)
def f(n):
    return f(n + 1) + 1
result = f(0)`,
    // Printing the traceback of a chain this deep near the memory limit takes 4-10 s of CPU on a loaded
    // 2-core machine: the time limit leaves room for that, the outcome is what is checked.
    limits: { timeoutMs: 30_000, memoryMb: 256 },
    expect: (result) => expect(['error', 'memory_limit']).toContain(result.outcome),
  },
  {
    name: 'ctypes: libc getuid and geteuid are the sandbox user, setuid(0) fails',
    language: 'python',
    code: String.raw`import ctypes
libc = ctypes.CDLL(None, use_errno=True)
result = {'uid': libc.getuid(), 'euid': libc.geteuid(), 'setuid': libc.setuid(0), 'after': libc.geteuid()}`,
    expect: (result) => {
      const value = z
        .object({ uid: z.number(), euid: z.number(), setuid: z.number(), after: z.number() })
        .parse(okValue(result));
      expect(value).toEqual({ uid: SANDBOX_UID, euid: SANDBOX_UID, setuid: -1, after: SANDBOX_UID });
    },
  },
  {
    name: 'ctypes: mount, unshare, chroot and setns fail',
    language: 'python',
    code: String.raw`import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def call(f, *args):
    code = f(*args)
    return 'ERR:errno ' + str(ctypes.get_errno()) if code != 0 else 'succeeded'
os.makedirs('/tmp/m', exist_ok=True)
fd = os.open('/proc/1/ns/mnt', os.O_RDONLY) if os.path.exists('/proc/1/ns/mnt') else -1
result = {
    'mount': call(libc.mount, b'none', b'/tmp/m', b'tmpfs', 0, None),
    'remount /usr': call(libc.mount, None, b'/usr', None, 32 | 4096, None),
    'unshare user': call(libc.unshare, 0x10000000),
    'unshare net': call(libc.unshare, 0x40000000),
    'unshare mount': call(libc.unshare, 0x00020000),
    'chroot': call(libc.chroot, b'/tmp'),
    'setns': call(libc.setns, fd, 0) if fd >= 0 else 'ERR:no fd',
}`,
    expect: expectAllFailed,
  },
  {
    name: 'sees only the box in /proc: no host process to signal or ptrace',
    language: 'python',
    code: String.raw`import ctypes, os
pids = sorted(int(name) for name in os.listdir('/proc') if name.isdigit())
def kill(pid):
    try:
        os.kill(pid, 0)
        return 'reachable'
    except ProcessLookupError:
        return 'ERR:ProcessLookupError'
    except PermissionError:
        return 'ERR:PermissionError'
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
traced = libc.ptrace(16, int(input['hostPid']), None, None)
result = {'pids': pids, 'host': kill(int(input['hostPid'])), 'ptrace host': 'ERR:errno ' + str(ctypes.get_errno()) if traced != 0 else 'attached'}`,
    expect: (result) => {
      const value = z
        .object({ pids: z.array(z.number()), host: z.string(), 'ptrace host': z.string() })
        .parse(okValue(result));
      // bwrap's init (1) and the guest (2); nothing of the host.
      expect(value.pids).toEqual([1, 2]);
      expect(value.host).toBe('ERR:ProcessLookupError');
      // EPERM from the syscall filter, before the kernel could even say there is no such process.
      expect(value['ptrace host']).toBe('ERR:errno 1');
    },
  },
  {
    name: "ptrace, process_vm_readv, bpf, keyctl and io_uring are refused by the box's syscall filter",
    language: 'python',
    code: String.raw`import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(*args):
    ctypes.set_errno(0)
    answer = libc.syscall(*[ctypes.c_long(a) for a in args])
    return 'ERR:errno ' + str(ctypes.get_errno()) if answer == -1 else 'allowed'
# x86_64 numbers: ptrace(PTRACE_ATTACH, 1) on the box's own init, process_vm_readv, bpf, keyctl, io_uring_setup.
result = {'ptrace init': call(101, 16, 1, 0, 0), 'process_vm_readv': call(310, 1, 0, 0, 0, 0, 0), 'bpf': call(321, 0, 0, 0), 'keyctl': call(250, 0, 0, 0, 0, 0), 'io_uring_setup': call(425, 1, 0)}`,
    arch: 'x64',
    expect: (result) => {
      expect(okValue(result)).toEqual({
        'ptrace init': 'ERR:errno 1',
        process_vm_readv: 'ERR:errno 1',
        bpf: 'ERR:errno 1',
        keyctl: 'ERR:errno 1',
        io_uring_setup: 'ERR:errno 38',
      });
    },
  },
  {
    name: 'os.setuid(0), os.setgid(0) and os.chown of a system file fail',
    language: 'python',
    code:
      PY +
      String.raw`result = {'setuid': attempt(lambda: os.setuid(0)), 'setgid': attempt(lambda: os.setgid(0)), 'chown': attempt(lambda: os.chown('/usr/bin/python3', os.getuid(), -1)), 'nice': attempt(lambda: os.nice(-10))}`,
    expect: expectAllFailed,
  },
  {
    name: 'os.kill(-1, SIGKILL) reaches only the box',
    language: 'python',
    code: String.raw`import os, signal
os.kill(-1, signal.SIGKILL)
os.kill(os.getpid(), signal.SIGKILL)`,
    expect: (result) => expect(['killed', 'error']).toContain(result.outcome),
  },
  {
    name: 'monkey-patched builtins and files in /tmp do not reach the next job',
    language: 'python',
    code: String.raw`import builtins, json
builtins.len = lambda value: 42
json.dumps = lambda *args, **kwargs: 'forged'
with open('/tmp/leftover', 'w') as f:
    f.write('x')
with open('/work/leftover', 'w') as f:
    f.write('x')
result = 1`,
    expect: async (result) => {
      expect(result.outcome).not.toBe('sandbox_error');
      const next = await run(
        'python',
        String.raw`import os
result = [len([1]), os.path.exists('/tmp/leftover'), os.path.exists('/work/leftover')]`,
      );
      expect(okValue(next)).toEqual([1, false, false]);
    },
  },
];

const cases: AbuseCase[] = [...javascriptCases, ...pythonCases];

gate.describe('hostile programs against the real backend', () => {
  beforeAll(async () => {
    // Set before any job: no job may see it anywhere.
    process.env.TANDEM_ABUSE_SECRET = SECRET;
    scratchRoot = await mkdtemp(path.join(tmpdir(), 'tandem-abuse-'));
    // bwrap runs as the sandbox user and must traverse this directory; the canary is world-readable, so only
    // the box (not file permissions) keeps it from the guest.
    await chmod(scratchRoot, 0o711);
    const canaryDir = await mkdtemp(path.join(tmpdir(), 'tandem-abuse-canary-'));
    await chmod(canaryDir, 0o755);
    const canary = path.join(canaryDir, 'canary.txt');
    await writeFile(canary, `${CANARY}\n${SECRET}\n`, { mode: 0o644 });
    server = createServer((socket) => {
      connections += 1;
      socket.on('error', () => undefined);
      socket.end('hello');
    });
    await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
    // Abstract Unix sockets belong to the network namespace: the box must not see this one.
    abstractServer = createServer((socket) => {
      connections += 1;
      socket.on('error', () => undefined);
      socket.end('hello');
    });
    await new Promise<void>((resolve) => abstractServer.listen(`\0${ABSTRACT}`, resolve));
    // Control: both listeners are reachable from outside the box.
    for (const target of [{ port: portOf(server), host: '127.0.0.1' }, { path: `\0${ABSTRACT}` }]) {
      await new Promise<void>((resolve, reject) => {
        const socket = connect(target, () => {
          socket.destroy();
          resolve();
        });
        socket.on('error', reject);
      });
    }
    await vi.waitFor(() => expect(connections).toBe(2));
    connections = 0;
    const hosts = Object.values(networkInterfaces())
      .flat()
      .flatMap((info) =>
        info !== undefined && info.family === 'IPv4' && !info.internal ? [info.address] : [],
      );
    bait = {
      port: portOf(server),
      hosts,
      canary,
      source: SOURCE_FILE,
      scratch: scratchRoot,
      hostPid: process.pid,
      abstract: ABSTRACT,
    };
    backend = trackedBackend({ scratchRoot, maxProcesses: MAX_PROCESSES });
    const health = await backend.check();
    expect(health.problems).toEqual([]);
  });

  afterEach(async () => {
    await drainBackends();
    // A cgroup can only be removed once empty: nothing of the job survived it.
    expect(await leftoverJobCgroups()).toEqual([]);
    expect(await readdir(scratchRoot)).toEqual([]);
    expect(connections).toBe(0);
  });

  afterAll(async () => {
    await closeBackends();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (abstractServer !== undefined)
      await new Promise<void>((resolve) => abstractServer.close(() => resolve()));
    if (bait !== undefined) await rm(path.dirname(bait.canary), { recursive: true, force: true });
    if (scratchRoot !== undefined) await rm(scratchRoot, { recursive: true, force: true });
    delete process.env.TANDEM_ABUSE_SECRET;
  });

  describe('abuse suite', () => {
    test('the host runs jobs as root with memory and pids cgroups (what the suite relies on)', async () => {
      expect(process.getuid?.()).toBe(0);
      const check = await backend.check();
      expect(check.warnings).toEqual([]);
    });

    // Hole 8 (issue 11), seen from the host: the box's own mount namespace, read through /proc/<pid>/root of
    // its interpreter while a job runs, holds no shell or system binary — for JavaScript too, whose guest
    // (QuickJS) cannot look at files outside /work itself.
    test.each([
      ['python', "open('/work/started', 'w').close()\nwhile True:\n    pass", '/usr/bin/python3', 'run.py'],
      ['javascript', "files.write('started', '');\nfor (;;) {}", '/usr/bin/node', 'host.cjs'],
    ] as const)(
      '%s: the box holds no shell, coreutils or launcher tool (seen from the host)',
      async (language, code, interpreter, marker) => {
        const abort = new AbortController();
        const running = backend.run(
          { language, code, input: null, limits: { ...LIMITS, timeoutMs: 20_000 } },
          { signal: abort.signal },
        );
        try {
          const pid = await vi.waitFor(
            async () => {
              const found = await boxInterpreterPid(interpreter, marker);
              // The job's own interpreter, running guest code (not one still starting).
              if (found === null || !existsSync(`/proc/${found}/root/work/started`)) {
                throw new Error('the job is not running yet');
              }
              return found;
            },
            { timeout: 10_000, interval: 20 },
          );
          const root = `/proc/${pid}/root`;
          const present = [
            '/bin/sh',
            '/usr/bin/sh',
            '/bin/bash',
            '/usr/bin/env',
            '/bin/ls',
            '/usr/bin/ls',
            '/usr/bin/id',
            '/usr/bin/prlimit',
            '/usr/bin/setpriv',
            '/usr/bin/mount',
            '/usr/bin/bwrap',
            language === 'python' ? '/usr/bin/node' : '/usr/bin/python3',
          ].filter((name) => existsSync(`${root}${name}`));
          expect(present).toEqual([]);
          expect(await readdir(`${root}/usr/bin`)).toEqual([language === 'python' ? 'python3' : 'node']);
          // The limits are in place without a prlimit in the box: rlimits set by the wrapper (Python) or by
          // prlimit exec'ing bwrap on the host (JavaScript), and the process limit of the job's pids cgroup,
          // which the interpreter was in from its start (Python also sets RLIMIT_NPROC inside its namespace).
          const limits = await readFile(`/proc/${pid}/limits`, 'utf8');
          expect(limits).toMatch(/^Max core file size\s+0\s+0\s/m);
          expect(limits).toMatch(/^Max cpu time\s+\d+\s+\d+\s+seconds/m);
          expect(limits).toMatch(/^Max file size\s+\d+\s+\d+\s+bytes/m);
          if (language === 'python') {
            expect(limits).toMatch(
              new RegExp(`^Max processes\\s+${MAX_PROCESSES}\\s+${MAX_PROCESSES}\\s`, 'm'),
            );
          }
          const memberships = (await readFile(`/proc/${pid}/cgroup`, 'utf8'))
            .split('\n')
            .map((line) => line.split(':'));
          // The v1 pids hierarchy where there is one (this machine's kind), else the v2 one.
          const pidsCgroup =
            memberships.find(([, controllers]) => controllers === 'pids') ??
            memberships.find(([, controllers]) => controllers === '');
          const pidsMax = await readFile(
            path.join(
              pidsCgroup?.[1] === 'pids' ? '/sys/fs/cgroup/pids' : '/sys/fs/cgroup',
              pidsCgroup?.[2] ?? '',
              'pids.max',
            ),
            'utf8',
          );
          expect(pidsMax.trim()).toBe(String(PIDS_LIMIT));
        } finally {
          abort.abort();
          await running;
        }
      },
    );

    test.for(cases.map((abuse) => [`${abuse.language}: ${abuse.name}`, abuse] as const))(
      '%s',
      async ([, abuse], context) => {
        if (abuse.arch !== undefined && abuse.arch !== process.arch) {
          context.skip(`the case's syscall numbers are ${abuse.arch}'s; this host is ${process.arch}`);
        }
        const result = await run(abuse.language, abuse.code, abuse.limits);
        expect(result.outcome).not.toBe('sandbox_error');
        await abuse.expect(result);
        const text = resultText(result);
        expect(text).not.toContain(SECRET);
        expect(text).not.toContain(CANARY);
        // The runner still serves: a trivial job in the same language answers correctly.
        const trivial = await run(abuse.language, abuse.language === 'python' ? 'result = 1' : 'result = 1;');
        expect(trivial).toMatchObject({ outcome: 'ok', value: 1 });
      },
    );
  });
});
