import { existsSync, readFileSync } from 'node:fs';

import { describe, expect, test } from 'vitest';

import {
  BLOCKED_SYSCALLS,
  DENIED_CLONE_FLAGS,
  SECCOMP_ARCHES,
  SECCOMP_RET,
  describeSeccompFilter,
  execDenyFilter,
  seccompFilter,
  type SeccompArch,
} from '../src/sandbox/seccomp.js';

// The filter is checked by running it: a small classic-BPF interpreter below executes the program bwrap
// would hand the kernel, against hand-made `seccomp_data`. Syscall numbers here are written out
// independently of seccomp.ts (and checked against the kernel headers when installed), so a wrong number
// there cannot agree with itself here.

const AUDIT_ARCH: Record<SeccompArch, number> = { x64: 0xc000_003e, arm64: 0xc000_00b7 };
/** Architectures the filter must kill: i386 (int 0x80 on x86_64), 32-bit ARM, and each other. */
const FOREIGN_ARCHES: Record<SeccompArch, number[]> = {
  x64: [0x4000_0003, 0x4000_0028, AUDIT_ARCH.arm64, 0xc000_00f3 /* riscv64 */, 0],
  arm64: [0x4000_0028, 0x4000_0003, AUDIT_ARCH.x64, 0xc000_00f3, 0],
};
const X32_BIT = 0x4000_0000;
const EPERM = 1;
const ENOSYS = 38;

/** Syscall numbers: x86_64 `asm/unistd_64.h` and asm-generic `unistd.h` (arm64); null where absent. */
const NR: Record<string, [x64: number | null, arm64: number | null]> = {
  // Must stay allowed.
  read: [0, 63],
  write: [1, 64],
  openat: [257, 56],
  close: [3, 57],
  mmap: [9, 222],
  mprotect: [10, 226],
  futex: [202, 98],
  clone: [56, 220],
  execve: [59, 221],
  execveat: [322, 281],
  wait4: [61, 260],
  exit_group: [231, 94],
  getpid: [39, 172],
  prctl: [157, 167],
  seccomp: [317, 277],
  rseq: [334, 293],
  epoll_pwait: [281, 22],
  vfork: [58, null],
  fork: [57, null],
  pidfd_open: [434, 434],
  // Denied.
  ptrace: [101, 117],
  process_vm_readv: [310, 270],
  process_vm_writev: [311, 271],
  kcmp: [312, 272],
  pidfd_getfd: [438, 438],
  process_madvise: [440, 440],
  kexec_load: [246, 104],
  kexec_file_load: [320, 294],
  init_module: [175, 105],
  finit_module: [313, 273],
  delete_module: [176, 106],
  bpf: [321, 280],
  perf_event_open: [298, 241],
  userfaultfd: [323, 282],
  keyctl: [250, 219],
  add_key: [248, 217],
  request_key: [249, 218],
  mount: [165, 40],
  umount2: [166, 39],
  pivot_root: [155, 41],
  chroot: [161, 51],
  open_tree: [428, 428],
  move_mount: [429, 429],
  fsopen: [430, 430],
  fsconfig: [431, 431],
  fsmount: [432, 432],
  fspick: [433, 433],
  mount_setattr: [442, 442],
  open_tree_attr: [467, 467],
  swapon: [167, 224],
  swapoff: [168, 225],
  reboot: [169, 142],
  acct: [163, 89],
  settimeofday: [164, 170],
  clock_settime: [227, 112],
  clock_adjtime: [305, 266],
  adjtimex: [159, 171],
  syslog: [103, 116],
  quotactl: [179, 60],
  quotactl_fd: [443, 443],
  open_by_handle_at: [304, 265],
  name_to_handle_at: [303, 264],
  lookup_dcookie: [212, 18],
  uselib: [134, null],
  nfsservctl: [180, 42],
  iopl: [172, null],
  ioperm: [173, null],
  personality: [135, 92],
  unshare: [272, 97],
  setns: [308, 268],
  clone3: [435, 435],
  io_uring_setup: [425, 425],
  io_uring_enter: [426, 426],
  io_uring_register: [427, 427],
  vmsplice: [278, 75],
  fanotify_init: [300, 262],
  mbind: [237, 235],
  migrate_pages: [256, 238],
  move_pages: [279, 239],
  get_mempolicy: [239, 236],
  set_mempolicy: [238, 237],
  set_mempolicy_home_node: [450, 450],
};

const ALLOWED = [
  'read',
  'write',
  'openat',
  'close',
  'mmap',
  'mprotect',
  'futex',
  'execve',
  'wait4',
  'exit_group',
  'getpid',
  'prctl',
  'seccomp',
  'rseq',
  'epoll_pwait',
  'vfork',
  'fork',
  'pidfd_open',
] as const;

/** What the brief requires denied; the filter may deny more. */
const REQUIRED_DENIED = [
  'ptrace',
  'process_vm_readv',
  'process_vm_writev',
  'kexec_load',
  'kexec_file_load',
  'init_module',
  'finit_module',
  'delete_module',
  'bpf',
  'perf_event_open',
  'userfaultfd',
  'keyctl',
  'add_key',
  'request_key',
  'mount',
  'umount2',
  'pivot_root',
  'chroot',
  'swapon',
  'swapoff',
  'reboot',
  'acct',
  'settimeofday',
  'clock_settime',
  'clock_adjtime',
  'adjtimex',
  'syslog',
  'quotactl',
  'open_by_handle_at',
  'name_to_handle_at',
  'lookup_dcookie',
  'uselib',
  'personality',
  'unshare',
  'setns',
  'io_uring_setup',
  'io_uring_enter',
  'io_uring_register',
  'clone3',
  'fanotify_init',
  'iopl',
  'ioperm',
  'nfsservctl',
] as const;

/** Syscalls that must answer ENOSYS (callers fall back); every other denied one answers EPERM. */
const ENOSYS_SYSCALLS = new Set([
  'clone3',
  'io_uring_setup',
  'io_uring_enter',
  'io_uring_register',
  'open_tree',
  'move_mount',
  'fsopen',
  'fsconfig',
  'fsmount',
  'fspick',
  'mount_setattr',
  'open_tree_attr',
]);

const CLONE_FLAGS = {
  /** What glibc's pthread_create passes (CLONE_VM | CLONE_FS | ... | CLONE_CHILD_CLEARTID). */
  thread: 0x003d_0f00,
  /** fork(): SIGCHLD only. */
  fork: 17,
  /** posix_spawn / vfork: CLONE_VM | CLONE_VFORK | SIGCHLD. */
  vfork: 0x0000_4111,
};
const CLONE_NAMESPACES: Record<string, number> = {
  CLONE_NEWNS: 0x0002_0000,
  CLONE_NEWCGROUP: 0x0200_0000,
  CLONE_NEWUTS: 0x0400_0000,
  CLONE_NEWIPC: 0x0800_0000,
  CLONE_NEWUSER: 0x1000_0000,
  CLONE_NEWPID: 0x2000_0000,
  CLONE_NEWNET: 0x4000_0000,
};

function nrOf(name: string, arch: SeccompArch): number | null {
  const entry = NR[name];
  if (entry === undefined) throw new Error(`no syscall number for ${name} in the test table`);
  return arch === 'x64' ? entry[0] : entry[1];
}

function requireNr(name: string, arch: SeccompArch): number {
  const nr = nrOf(name, arch);
  if (nr === null) throw new Error(`${name} does not exist on ${arch}`);
  return nr;
}

// --- A classic-BPF interpreter, only what a seccomp filter may use of it. ---

interface Instruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

const OP = { LD_W_ABS: 0x20, JA: 0x05, JEQ_K: 0x15, JSET_K: 0x45, RET_K: 0x06 } as const;
const SECCOMP_DATA_BYTES = 64;

function decode(program: Buffer): Instruction[] {
  expect(program.length % 8).toBe(0);
  const instructions: Instruction[] = [];
  for (let at = 0; at < program.length; at += 8) {
    instructions.push({
      code: program.readUInt16LE(at),
      jt: program.readUInt8(at + 2),
      jf: program.readUInt8(at + 3),
      k: program.readUInt32LE(at + 4),
    });
  }
  return instructions;
}

/** `struct seccomp_data` as the kernel lays it out on a little-endian ABI. */
function seccompData(nr: number, arch: number, args: readonly bigint[] = []): Buffer {
  const data = Buffer.alloc(SECCOMP_DATA_BYTES);
  data.writeInt32LE(nr | 0, 0);
  data.writeUInt32LE(arch >>> 0, 4);
  data.writeBigUInt64LE(0x40_1000n, 8);
  args.forEach((arg, index) => data.writeBigUInt64LE(BigInt.asUintN(64, arg), 16 + index * 8));
  return data;
}

/** Runs `program` on `data` and returns the 32-bit action; throws on anything the kernel would reject. */
function runFilter(program: readonly Instruction[], data: Buffer): number {
  let accumulator = 0;
  let pc = 0;
  for (let steps = 0; steps <= program.length; steps += 1) {
    const instruction = program[pc];
    if (instruction === undefined) throw new Error(`fell off the program at ${pc}`);
    switch (instruction.code) {
      case OP.LD_W_ABS:
        if (instruction.k % 4 !== 0 || instruction.k + 4 > SECCOMP_DATA_BYTES) {
          throw new Error(`load outside seccomp_data at ${pc}: offset ${instruction.k}`);
        }
        accumulator = data.readUInt32LE(instruction.k);
        pc += 1;
        break;
      case OP.JA:
        pc += 1 + instruction.k;
        break;
      case OP.JEQ_K:
        pc += 1 + (accumulator === instruction.k ? instruction.jt : instruction.jf);
        break;
      case OP.JSET_K:
        pc += 1 + ((accumulator & instruction.k) !== 0 ? instruction.jt : instruction.jf);
        break;
      case OP.RET_K:
        return instruction.k >>> 0;
      default:
        throw new Error(`opcode 0x${instruction.code.toString(16)} at ${pc} is not handled`);
    }
  }
  throw new Error('the program did not return');
}

function actionFor(arch: SeccompArch, nr: number, args: readonly bigint[] = [], auditArch?: number): number {
  return runFilter(decode(seccompFilter(arch)), seccompData(nr, auditArch ?? AUDIT_ARCH[arch], args));
}

const errnoAction = (errno: number): number => (SECCOMP_RET.ERRNO | errno) >>> 0;

/** The names each architecture's filter denies, according to BLOCKED_SYSCALLS. */
function deniedOn(arch: SeccompArch): string[] {
  return BLOCKED_SYSCALLS.filter((entry) => entry.arches.includes(arch)).map((entry) => entry.name);
}

describe.each(SECCOMP_ARCHES)('seccompFilter(%s)', (arch) => {
  const program = decode(seccompFilter(arch));

  test.each(ALLOWED.filter((name) => nrOf(name, arch) !== null))('allows %s', (name) => {
    expect(actionFor(arch, requireNr(name, arch))).toBe(SECCOMP_RET.ALLOW);
  });

  test.each(deniedOn(arch))('denies %s with its errno', (name) => {
    const expected = ENOSYS_SYSCALLS.has(name) ? ENOSYS : EPERM;
    expect(actionFor(arch, requireNr(name, arch))).toBe(errnoAction(expected));
    expect(BLOCKED_SYSCALLS.find((entry) => entry.name === name)?.errno).toBe(expected);
  });

  test('denies every syscall the brief requires, where the architecture has it', () => {
    const denied = new Set(deniedOn(arch));
    for (const name of REQUIRED_DENIED) {
      if (nrOf(name, arch) !== null) expect(denied, name).toContain(name);
    }
  });

  test('denies nothing else in the number table (no stray or shifted numbers)', () => {
    const denied = new Set(deniedOn(arch));
    for (const name of Object.keys(NR)) {
      const nr = nrOf(name, arch);
      if (nr === null || name === 'clone') continue;
      const action = actionFor(arch, nr);
      if (denied.has(name)) expect(action, name).not.toBe(SECCOMP_RET.ALLOW);
      else expect(action, name).toBe(SECCOMP_RET.ALLOW);
    }
  });

  test('an unknown syscall number is allowed (the kernel answers ENOSYS itself)', () => {
    expect(actionFor(arch, 1000)).toBe(SECCOMP_RET.ALLOW);
    expect(actionFor(arch, -1)).toBe(SECCOMP_RET.ALLOW);
  });

  test('kills a foreign architecture, even for a syscall it would allow natively', () => {
    for (const foreign of FOREIGN_ARCHES[arch]) {
      for (const nr of [0, 1, 20, requireNr('ptrace', arch)]) {
        expect(actionFor(arch, nr, [], foreign), `arch 0x${foreign.toString(16)} nr ${nr}`).toBe(
          SECCOMP_RET.KILL_PROCESS,
        );
      }
    }
  });

  test('clone: threads, fork and vfork are allowed; any namespace flag is EPERM', () => {
    const clone = requireNr('clone', arch);
    for (const flags of Object.values(CLONE_FLAGS)) {
      expect(actionFor(arch, clone, [BigInt(flags)])).toBe(SECCOMP_RET.ALLOW);
    }
    // The kernel reads only the low 32 bits of clone's flags; high bits alone change nothing.
    expect(actionFor(arch, clone, [0xffff_ffff_0000_0011n])).toBe(SECCOMP_RET.ALLOW);
    for (const [name, flag] of Object.entries(CLONE_NAMESPACES)) {
      expect(actionFor(arch, clone, [BigInt(CLONE_FLAGS.fork | flag)]), name).toBe(errnoAction(EPERM));
    }
    const all = Object.values(CLONE_NAMESPACES).reduce((sum, flag) => sum | flag, 0);
    expect(DENIED_CLONE_FLAGS).toBe(all);
  });

  test('is a valid seccomp program: in size, every jump in range, ends in a return', () => {
    expect(program.length).toBeGreaterThan(0);
    expect(program.length).toBeLessThan(4096);
    program.forEach((instruction, pc) => {
      expect(Object.values(OP), `opcode at ${pc}`).toContain(instruction.code);
      if (instruction.code === OP.JEQ_K || instruction.code === OP.JSET_K) {
        expect(pc + 1 + instruction.jt, `jt at ${pc}`).toBeLessThan(program.length);
        expect(pc + 1 + instruction.jf, `jf at ${pc}`).toBeLessThan(program.length);
      } else if (instruction.code === OP.JA) {
        expect(pc + 1 + instruction.k, `ja at ${pc}`).toBeLessThan(program.length);
      } else if (instruction.code === OP.LD_W_ABS) {
        expect(instruction.k % 4).toBe(0);
        expect(instruction.k + 4).toBeLessThanOrEqual(SECCOMP_DATA_BYTES);
      }
    });
    expect(program.at(-1)?.code).toBe(OP.RET_K);
    // The first thing it does is check the ABI.
    expect(program[0]).toEqual({ code: OP.LD_W_ABS, jt: 0, jf: 0, k: 4 });
  });

  test('is deterministic', () => {
    expect(seccompFilter(arch).equals(seccompFilter(arch))).toBe(true);
  });

  test('describeSeccompFilter is one line naming the architecture and the denied syscalls', () => {
    const line = describeSeccompFilter(arch);
    expect(line).not.toContain('\n');
    expect(line).toContain(arch);
    expect(line).toContain(`${program.length} BPF instructions`);
    for (const name of deniedOn(arch)) expect(line).toContain(name);
  });
});

describe.each(SECCOMP_ARCHES)("execDenyFilter(%s), the Python wrapper's own second filter", (arch) => {
  const program = decode(execDenyFilter(arch));
  const action = (nr: number, auditArch = AUDIT_ARCH[arch]): number =>
    runFilter(program, seccompData(nr, auditArch));

  test('execve and execveat answer EPERM', () => {
    expect(action(requireNr('execve', arch))).toBe(errnoAction(EPERM));
    expect(action(requireNr('execveat', arch))).toBe(errnoAction(EPERM));
  });

  test('everything else the interpreter needs is allowed: fork, clone, read, write, mmap, an unknown number', () => {
    for (const name of ALLOWED.filter((entry) => entry !== 'execve' && nrOf(entry, arch) !== null)) {
      expect(action(requireNr(name, arch)), name).toBe(SECCOMP_RET.ALLOW);
    }
    expect(action(1000)).toBe(SECCOMP_RET.ALLOW);
  });

  test('kills a foreign architecture (i386 int 0x80 would otherwise reach its own execve)', () => {
    for (const foreign of FOREIGN_ARCHES[arch]) {
      expect(action(11, foreign), `arch 0x${foreign.toString(16)}`).toBe(SECCOMP_RET.KILL_PROCESS);
    }
  });

  test.runIf(arch === 'x64')('kills the x32 ABI, whose execve has its own number', () => {
    expect(action(X32_BIT | 520)).toBe(SECCOMP_RET.KILL_PROCESS);
  });
});

describe('x86_64 specifics', () => {
  test('kills any syscall number with the x32 bit set', () => {
    for (const name of ['read', 'getpid', 'ptrace', 'clone', 'keyctl']) {
      expect(actionFor('x64', X32_BIT | requireNr(name, 'x64')), name).toBe(SECCOMP_RET.KILL_PROCESS);
    }
    // x32's own ptrace number (compat entry 521), and the top of the x32 range.
    expect(actionFor('x64', X32_BIT | 521)).toBe(SECCOMP_RET.KILL_PROCESS);
    expect(actionFor('x64', 0x7fff_ffff)).toBe(SECCOMP_RET.KILL_PROCESS);
    expect(actionFor('x64', -2)).toBe(SECCOMP_RET.KILL_PROCESS);
  });

  test('nr -1 (no syscall) is exempt from the x32 kill, as in libseccomp', () => {
    expect(actionFor('x64', -1)).toBe(SECCOMP_RET.ALLOW);
  });

  test('on arm64 the same bit is just an unknown number (no x32 ABI there)', () => {
    expect(actionFor('arm64', X32_BIT | 63)).toBe(SECCOMP_RET.ALLOW);
  });

  test('uselib, iopl and ioperm exist (and are denied) on x86_64 only', () => {
    for (const name of ['uselib', 'iopl', 'ioperm']) {
      expect(BLOCKED_SYSCALLS.find((entry) => entry.name === name)?.arches).toEqual(['x64']);
    }
  });
});

describe('BLOCKED_SYSCALLS', () => {
  test('names are unique, reasons are given, errnos are EPERM or ENOSYS', () => {
    const names = BLOCKED_SYSCALLS.map((entry) => entry.name);
    expect(new Set(names).size).toBe(names.length);
    for (const entry of BLOCKED_SYSCALLS) {
      expect(entry.reason.length, entry.name).toBeGreaterThan(10);
      expect([EPERM, ENOSYS], entry.name).toContain(entry.errno);
      expect(entry.arches.length, entry.name).toBeGreaterThan(0);
    }
  });

  test('every architecture it names for a syscall has that syscall', () => {
    for (const entry of BLOCKED_SYSCALLS) {
      for (const arch of SECCOMP_ARCHES) {
        expect(entry.arches.includes(arch), `${entry.name} on ${arch}`).toBe(nrOf(entry.name, arch) !== null);
      }
    }
  });

  test('clone, prctl and seccomp are not in it', () => {
    const names = BLOCKED_SYSCALLS.map((entry) => entry.name);
    for (const name of ['clone', 'prctl', 'seccomp', 'execve', 'fork', 'vfork'])
      expect(names).not.toContain(name);
  });

  test('is frozen', () => {
    expect(Object.isFrozen(BLOCKED_SYSCALLS)).toBe(true);
    expect(BLOCKED_SYSCALLS.every((entry) => Object.isFrozen(entry))).toBe(true);
  });
});

describe('architectures', () => {
  test.each(['ia32', 'arm', 'riscv64', 'ppc64', 's390x', 'loong64', 'mips', ''])('%j throws', (arch) => {
    expect(() => seccompFilter(arch)).toThrow(/no seccomp filter for architecture/);
    expect(() => describeSeccompFilter(arch)).toThrow(/no seccomp filter for architecture/);
  });

  test.runIf(process.arch === 'x64' || process.arch === 'arm64')('defaults to process.arch', () => {
    expect(seccompFilter().equals(seccompFilter(process.arch))).toBe(true);
    expect(describeSeccompFilter()).toBe(describeSeccompFilter(process.arch));
  });
});

/** `#define __NR_name number` lines of a kernel header; names defined by other names are skipped. */
function headerNumbers(file: string): Map<string, number> {
  const numbers = new Map<string, number>();
  for (const match of readFileSync(file, 'utf8').matchAll(/^#define __NR_(\w+)\s+(\d+)\s*$/gm)) {
    const [, name, value] = match;
    if (name !== undefined && value !== undefined) numbers.set(name, Number(value));
  }
  return numbers;
}

const HEADERS: Record<SeccompArch, string[]> = {
  x64: ['/usr/include/x86_64-linux-gnu/asm/unistd_64.h', '/usr/include/asm/unistd_64.h'],
  arm64: ['/usr/include/asm-generic/unistd.h'],
};

describe.each(SECCOMP_ARCHES)('syscall numbers against the installed kernel headers (%s)', (arch) => {
  const header = HEADERS[arch].find((file) => existsSync(file));

  // linux-libc-dev may be absent (CI images): then the hand-written table stands alone.
  test('every number in the test table matches the header', (context) => {
    if (header === undefined) {
      return context.skip(
        `no kernel header for ${arch} (${HEADERS[arch].join(', ')}): apt-get install linux-libc-dev`,
      );
    }
    const numbers = headerNumbers(header);
    let compared = 0;
    for (const name of Object.keys(NR)) {
      const fromHeader = numbers.get(name);
      // Syscalls newer than the installed headers (e.g. open_tree_attr, 6.15) cannot be compared.
      if (fromHeader === undefined) continue;
      expect(nrOf(name, arch), name).toBe(fromHeader);
      compared += 1;
    }
    expect(compared).toBeGreaterThan(50);
  });
});
