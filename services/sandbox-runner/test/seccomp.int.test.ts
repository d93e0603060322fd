import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';

import { buildBwrapArgs } from '../src/sandbox/index.js';
import { SECCOMP_ARCHES, seccompFilter } from '../src/sandbox/seccomp.js';
import { BWRAP_PATH, hostGate } from './helpers/host.js';

// The filter in a real bubblewrap box: bwrap reads it from fd 3 (`--seccomp 3`) and applies it to the
// guest. Python probes call syscalls directly through ctypes and report the errno; the same probes run
// once without the filter, to show the answer comes from the filter and not from the namespaces. Then
// real work in python3 and node (threads, subprocesses, workers, io_uring fallback, WebAssembly) must
// still succeed under it. When the tests run as root (as in CI) bwrap runs as uid 65534, like the runner's.
// The box is the backend's own (`buildBwrapArgs`), with the host's /usr as its root instead of the
// interpreter-only one, so the probes can start /bin/true and subprocesses.

const BWRAP = BWRAP_PATH;
const PYTHON = '/usr/bin/python3';
const NODE = '/usr/bin/node';
const ENV = '/usr/bin/env';
const gate = await hostGate(['bubblewrap']);
const SUPPORTED = SECCOMP_ARCHES.some((arch) => arch === process.arch);
const SANDBOX_IDS = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
/** bwrap reports a guest killed by signal n as exit code 128 + n; SIGSYS is 31 on x86_64 and arm64. */
const KILLED_BY_SIGSYS = 128 + 31;
const BOX_TIMEOUT_MS = 20_000;

/** Syscall numbers the probes call, per architecture (x86_64 syscall_64.tbl, asm-generic for arm64). */
const PROBE_NR: Record<string, Record<string, number>> = {
  x64: {
    getpid: 39,
    ptrace: 101,
    process_vm_readv: 310,
    keyctl: 250,
    bpf: 321,
    perf_event_open: 298,
    userfaultfd: 323,
    unshare: 272,
    setns: 308,
    clone: 56,
    clone3: 435,
    io_uring_setup: 425,
    mount: 165,
    chroot: 161,
    personality: 135,
  },
  arm64: {
    getpid: 172,
    ptrace: 117,
    process_vm_readv: 270,
    keyctl: 219,
    bpf: 280,
    perf_event_open: 241,
    userfaultfd: 282,
    unshare: 97,
    setns: 268,
    clone: 220,
    clone3: 435,
    io_uring_setup: 425,
    mount: 40,
    chroot: 51,
    personality: 92,
  },
};

/**
 * Calls each named probe and prints `{ probe: return value | errno name }` as JSON. argv[1]: syscall
 * numbers; argv[2:]: the probes to run. Probes that would disturb the box if they ever succeeded undo it
 * (detach from pid 1, reap a forked child).
 */
const PROBE_SCRIPT = String.raw`
import ctypes, errno, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
N = json.loads(sys.argv[1])
def sc(name, *args):
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(N[name]), *[ctypes.c_ulong(a & 0xffffffffffffffff) for a in args])
    if result != -1:
        return result
    code = ctypes.get_errno()
    return errno.errorcode.get(code, str(code))
CLONE_NEWUSER = 0x10000000
SIGCHLD = 17
def attach_init():
    result = sc('ptrace', 16, 1, 0, 0)  # PTRACE_ATTACH to the box's init
    if result == 0:
        sc('ptrace', 17, 1, 0, 0)  # PTRACE_DETACH
    return result
def clone_newuser():
    result = sc('clone', CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)
    if result == 0:
        os._exit(0)
    if isinstance(result, int):
        os.waitpid(result, 0)
    return result
def seccomp_mode(pid):
    with open('/proc/%s/status' % pid) as status:
        return next(line.split()[1] for line in status if line.startswith('Seccomp:'))
probes = {
    'getpid': lambda: sc('getpid'),
    'ptrace_traceme': lambda: sc('ptrace', 0, 0, 0, 0),
    'ptrace_attach_init': attach_init,
    'process_vm_readv_init': lambda: sc('process_vm_readv', 1, 0, 0, 0, 0, 0),
    'keyctl': lambda: sc('keyctl', 0, -3, 0),  # KEYCTL_GET_KEYRING_ID of the session keyring
    'bpf': lambda: sc('bpf', 999, 0, 0),  # no such command: EINVAL from the kernel
    'perf_event_open': lambda: sc('perf_event_open', 0, 0, -1, -1, 0),  # NULL attr: EFAULT from the kernel
    'userfaultfd': lambda: sc('userfaultfd', 0),
    'unshare_nothing': lambda: sc('unshare', 0),  # a no-op the kernel allows
    'unshare_user': lambda: sc('unshare', CLONE_NEWUSER),
    'setns': lambda: sc('setns', -1, 0),  # bad fd: EBADF from the kernel
    'clone_newuser': clone_newuser,
    'clone3': lambda: sc('clone3', 0, 0),  # size 0: EINVAL from the kernel
    'io_uring_setup': lambda: sc('io_uring_setup', 1, 0),  # NULL params: EFAULT from the kernel
    'mount': lambda: sc('mount', 0, 0, 0, 0, 0),
    'chroot': lambda: sc('chroot', 0),  # NULL path: EFAULT from the kernel
    'personality_query': lambda: sc('personality', 0xffffffff),
    'seccomp_self': lambda: seccomp_mode('self'),
    'seccomp_init': lambda: seccomp_mode(1),
}
print(json.dumps({name: probes[name]() for name in sys.argv[2:]}))
`;

/** What each probe answers inside the filtered box. */
const FILTERED: Record<string, string> = {
  ptrace_traceme: 'EPERM',
  ptrace_attach_init: 'EPERM',
  process_vm_readv_init: 'EPERM',
  keyctl: 'EPERM',
  bpf: 'EPERM',
  perf_event_open: 'EPERM',
  userfaultfd: 'EPERM',
  unshare_nothing: 'EPERM',
  unshare_user: 'EPERM',
  setns: 'EPERM',
  clone_newuser: 'EPERM',
  clone3: 'ENOSYS',
  io_uring_setup: 'ENOSYS',
  mount: 'EPERM',
  chroot: 'EPERM',
  personality_query: 'EPERM',
  // bwrap applies the filter to the guest and to its own pid-1 reaper (2 = SECCOMP_MODE_FILTER).
  seccomp_self: '2',
  seccomp_init: '2',
};
/**
 * Probes that are harmless without the filter, whose unfiltered answer differs from the filtered one on
 * any kernel: proof that the errno above is the filter's. (Not bpf: kernels before 6.5 with
 * unprivileged_bpf_disabled answer EPERM to every command themselves.)
 */
const CONTROL_PROBES = [
  'getpid',
  'unshare_nothing',
  'setns',
  'clone3',
  'perf_event_open',
  'chroot',
  'personality_query',
  'seccomp_self',
];

const ProbeResults = z.record(z.string(), z.union([z.number(), z.string()]));

/** The host's system files, read-only: what the probes need to start /bin/true, python3 and node. */
function hostRoot(): Array<{ hostPath: string; boxPath: string }> {
  return ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/etc/ld.so.cache']
    .filter((entry) => existsSync(entry))
    .map((entry) => ({ hostPath: entry, boxPath: entry }));
}

/** The backend's box around `command`, with the filter read from fd 3 (or none). */
function boxArgs(seccompFd: number | null, command: readonly string[]): string[] {
  return buildBwrapArgs({
    root: hostRoot(),
    boxDir: path.join(scratch, 'box'),
    workDir: path.join(scratch, 'work'),
    tmpBytes: 16 * 1024 * 1024,
    seccompFd,
    command,
  });
}

interface BoxRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * How the program reaches bwrap: `pipe` (written and closed by the test: EOF ends it), `file` (a freshly
 * opened fd on the filter file), an already open `FileHandle`, or `none` (no --seccomp at all).
 */
type FilterSource = 'pipe' | 'file' | 'none' | FileHandle;

let scratch: string;
let filterFile: string;
let filter: Buffer;

async function runBox(
  command: readonly string[],
  options: { filter?: FilterSource; env?: Record<string, string> } = {},
): Promise<BoxRun> {
  // The box's environment is the builder's four variables; more go in through env(1) inside the box.
  const extraEnv = Object.entries(options.env ?? {}).map(([name, value]) => `${name}=${value}`);
  const boxed = extraEnv.length === 0 ? command : [ENV, ...extraEnv, ...command];
  const source = options.filter ?? 'pipe';
  let opened: FileHandle | undefined;
  const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe'];
  if (source === 'pipe') stdio.push('pipe');
  else if (source === 'file') {
    opened = await open(filterFile, 'r');
    stdio.push(opened.fd);
  } else if (source !== 'none') stdio.push(source.fd);

  try {
    const child = spawn(BWRAP, boxArgs(source === 'none' ? null : 3, boxed), {
      stdio,
      env: {},
      cwd: '/',
      ...SANDBOX_IDS,
    });
    if (source === 'pipe') {
      const sink = child.stdio[3];
      if (!(sink instanceof Writable)) throw new Error('no pipe on fd 3');
      // EPIPE if bwrap died before reading: the exit code and stderr tell the story.
      sink.on('error', () => undefined);
      sink.end(filter);
    }
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), BOX_TIMEOUT_MS);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (exitCode, exitSignal) => resolve([exitCode, exitSignal]));
    });
    clearTimeout(timer);
    return {
      code,
      signal,
      stdout: Buffer.concat(stdout).toString('utf8'),
      stderr: Buffer.concat(stderr).toString('utf8'),
    };
  } finally {
    await opened?.close();
  }
}

function ok(run: BoxRun): string {
  expect({ code: run.code, signal: run.signal }, run.stderr).toEqual({ code: 0, signal: null });
  return run.stdout.trim();
}

async function probe(
  names: readonly string[],
  filterSource: FilterSource = 'pipe',
): Promise<Record<string, number | string>> {
  const numbers = PROBE_NR[process.arch];
  if (numbers === undefined) throw new Error(`no probe numbers for ${process.arch}`);
  const run = await runBox([PYTHON, '-I', '-S', '-c', PROBE_SCRIPT, JSON.stringify(numbers), ...names], {
    filter: filterSource,
  });
  return ProbeResults.parse(JSON.parse(ok(run)));
}

// No filter exists for another architecture (and no CI can provide one): skipped there, CI or not.
function describeOnArch(name: string, body: () => void): void {
  if (SUPPORTED) gate.describe(name, body);
  else describe.skip(`${name} [skipped: no seccomp filter for ${process.arch}]`, body);
}

describeOnArch('seccomp filter in a real bubblewrap box', () => {
  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'tandem-seccomp-'));
    // bwrap runs as the sandbox user (as root) and must reach the box's directories to bind them.
    await chmod(scratch, 0o755);
    for (const dir of ['box', 'work']) {
      await mkdir(path.join(scratch, dir), { mode: 0o755 });
      if (SANDBOX_IDS.uid !== undefined)
        await chown(path.join(scratch, dir), SANDBOX_IDS.uid, SANDBOX_IDS.gid);
    }
    filter = seccompFilter();
    filterFile = path.join(scratch, 'filter.bpf');
    await writeFile(filterFile, filter, { mode: 0o644 });
  });

  afterAll(async () => {
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  });

  test('denied syscalls answer EPERM or ENOSYS; the guest and the box init are both filtered', async () => {
    const results = await probe(Object.keys(FILTERED));
    expect(results).toEqual(FILTERED);
  });

  test('without the filter the same probes get other answers (the errnos above are the filter’s)', async () => {
    const control = await probe(CONTROL_PROBES, 'none');
    const filtered = await probe(CONTROL_PROBES);
    expect(typeof filtered.getpid).toBe('number');
    expect(control.getpid).toBe(filtered.getpid);
    expect(control.unshare_nothing).toBe(0);
    expect(typeof control.personality_query).toBe('number');
    expect(control.seccomp_self).toBe('0');
    for (const name of CONTROL_PROBES.filter((name) => name !== 'getpid')) {
      expect(control[name], name).not.toBe(filtered[name]);
      expect(filtered[name], name).toBe(FILTERED[name]);
    }
  });

  test('a program read from a file descriptor works like one from a pipe', async () => {
    expect(await probe(['ptrace_traceme', 'io_uring_setup'], 'file')).toEqual({
      ptrace_traceme: 'EPERM',
      io_uring_setup: 'ENOSYS',
    });
  });

  test('bwrap reads the fd to EOF: a descriptor shared by two boxes leaves the second with an empty program', async () => {
    const shared = await open(filterFile, 'r');
    try {
      expect(ok(await runBox(['/bin/true'], { filter: shared }))).toBe('');
      const second = await runBox(['/bin/true'], { filter: shared });
      expect(second.code).toBe(1);
      // bwrap's message blames the kernel configuration; the real cause is the empty read.
      expect(second.stderr).toMatch(/PR_SET_SECCOMP/);
    } finally {
      await shared.close();
    }
  });

  describe.runIf(process.arch === 'x64')('x86_64 ABIs', () => {
    const X32_GETPID = String.raw`
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
print(libc.syscall(ctypes.c_long(0x40000000 | 39)), ctypes.get_errno())
`;
    // mov eax, 20 (i386 getpid); int 0x80; ret — from a 64-bit process: seccomp sees AUDIT_ARCH_I386.
    const I386_GETPID = String.raw`
import ctypes, mmap
page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3]))
print(ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(page)))())
`;

    test('an x32 syscall kills the process with SIGSYS', async () => {
      const control = await runBox([PYTHON, '-I', '-S', '-c', X32_GETPID], { filter: 'none' });
      // Without the filter: ENOSYS (x32 off, the usual) or a pid.
      expect(control.code, control.stderr).toBe(0);
      const run = await runBox([PYTHON, '-I', '-S', '-c', X32_GETPID]);
      expect(run.code, run.stderr).toBe(KILLED_BY_SIGSYS);
      expect(run.stdout).toBe('');
    });

    test('an i386 syscall (int 0x80) kills the process with SIGSYS', async (context) => {
      const control = await runBox([PYTHON, '-I', '-S', '-c', I386_GETPID], { filter: 'none' });
      if (control.code !== 0) {
        // A kernel without IA32 emulation faults on int 0x80 before any syscall: nothing to filter.
        context.skip(
          `int 0x80 does not reach the kernel's syscall entry here (exit ${String(control.code)})`,
        );
      }
      expect(Number(control.stdout.trim())).toBeGreaterThan(0);
      const run = await runBox([PYTHON, '-I', '-S', '-c', I386_GETPID]);
      expect(run.code, run.stderr).toBe(KILLED_BY_SIGSYS);
      expect(run.stdout).toBe('');
    });
  });

  test('python3: threads, a subprocess, json and fork still work', async () => {
    const code = String.raw`
import json, os, subprocess, threading
squares = []
threads = [threading.Thread(target=lambda i=i: squares.append(i * i)) for i in range(4)]
for thread in threads: thread.start()
for thread in threads: thread.join()
true = subprocess.run(['/bin/true']).returncode
child = subprocess.run(['/usr/bin/python3', '-I', '-S', '-c', 'print(6 * 7)'], capture_output=True, text=True).stdout.strip()
pid = os.fork()
if pid == 0:
    os._exit(7)
forked = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print(json.dumps({'squares': sorted(squares), 'true': true, 'child': child, 'forked': forked}))
`;
    const output = ok(await runBox([PYTHON, '-I', '-S', '-c', code]));
    expect(JSON.parse(output)).toEqual({ squares: [0, 1, 4, 9], true: 0, child: '42', forked: 7 });
  });

  test("python3: multiprocessing's semaphores are refused by the box's read-only /dev, with or without the filter", async () => {
    // A Pool needs a POSIX semaphore in /dev/shm, which the box's read-only /dev does not give: the box's
    // doing (its /dev is remounted read-only), not the filter's, as the unfiltered run shows.
    const code = String.raw`
import multiprocessing
try:
    multiprocessing.get_context('fork').Lock()
    print('created')
except OSError as error:
    print(error.errno)
`;
    const filtered = ok(await runBox([PYTHON, '-I', '-S', '-c', code]));
    const unfiltered = ok(await runBox([PYTHON, '-I', '-S', '-c', code], { filter: 'none' }));
    // EROFS
    expect({ filtered, unfiltered }).toEqual({ filtered: '30', unfiltered: '30' });
  });

  const NODE_WORK = String.raw`
const fs = require('node:fs');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const { Worker } = require('node:worker_threads');
(async () => {
  fs.writeFileSync('/tmp/a.txt', 'hello');
  await fs.promises.writeFile('/tmp/b.txt', fs.readFileSync('/tmp/a.txt'));
  const text = await fs.promises.readFile('/tmp/b.txt', 'utf8');
  const fromWorker = await new Promise((resolve, reject) => {
    const worker = new Worker('require("node:worker_threads").parentPort.postMessage(6 * 7)', { eval: true });
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const child = spawnSync('/bin/true');
  const digest = crypto.createHash('sha256').update(text).digest('hex').slice(0, 8);
  const key = await new Promise((resolve, reject) =>
    crypto.scrypt('password', 'salt', 16, (error, derived) => (error ? reject(error) : resolve(derived.length))),
  );
  console.log(JSON.stringify({ text, fromWorker, child: child.status, spawnError: child.error?.code ?? null, digest, key }));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
`;
  const NODE_EXPECTED = {
    text: 'hello',
    fromWorker: 42,
    child: 0,
    spawnError: null,
    digest: '2cf24dba',
    key: 16,
  };

  test('node: fs, worker_threads, child_process and crypto still work', async () => {
    expect(JSON.parse(ok(await runBox([NODE, '-e', NODE_WORK])))).toEqual(NODE_EXPECTED);
  });

  test('node with io_uring forced on (UV_USE_IO_URING=1): libuv takes the ENOSYS and falls back', async () => {
    const run = await runBox([NODE, '-e', NODE_WORK], { env: { UV_USE_IO_URING: '1' } });
    expect(JSON.parse(ok(run))).toEqual(NODE_EXPECTED);
  });

  test('node --liftoff-only: WebAssembly compiles and runs', async () => {
    // (module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))
    const wasm = [
      0, 97, 115, 109, 1, 0, 0, 0, 1, 7, 1, 96, 2, 127, 127, 1, 127, 3, 2, 1, 0, 7, 7, 1, 3, 97, 100, 100, 0,
      0, 10, 9, 1, 7, 0, 32, 0, 32, 1, 106, 11,
    ];
    const code = `WebAssembly.compile(new Uint8Array(${JSON.stringify(wasm)}))
  .then((module) => WebAssembly.instantiate(module))
  .then((instance) => console.log(instance.exports.add(2, 3)))
  .catch((error) => { console.error(error); process.exit(1); });`;
    expect(ok(await runBox([NODE, '--liftoff-only', '-e', code]))).toBe('5');
  });
});
