/**
 * The box's syscall filter: a classic-BPF seccomp program that bubblewrap loads with `--seccomp FD`.
 *
 * bwrap reads the program (an array of `struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }`, 8 bytes
 * each, in native byte order) from the fd until EOF, and installs it with PR_SET_SECCOMP after its own
 * setup (mounts, namespaces, capability drop), right before it execs the guest command — and also in its
 * pid-1 reaper. bwrap itself is therefore never filtered, but everything the guest runs is, and so is the
 * init the guest shares its pid namespace with. A filter is inherited across fork, clone and execve and
 * can never be removed; a guest may stack its own filters (`seccomp` stays allowed), which only restricts
 * it further.
 *
 * The policy is a deny list, in the spirit of Docker's default profile and Flatpak's: the namespaces,
 * the dropped capabilities and the uid already make most of these calls fail; the filter is a second,
 * kernel-version-independent wall in front of the kernel code an attacker would aim at (ptrace, BPF,
 * perf, keyrings, io_uring, userfaultfd, the mount APIs). It is not an allow list on purpose: the guest
 * runs whole interpreters (CPython, Node) whose syscall use changes with every release.
 *
 * Program shape (for each supported architecture):
 *
 *   1. `seccomp_data.arch` is not this ABI → KILL_PROCESS. On x86_64 this stops the i386 `int 0x80` and
 *      `sysenter` entry points, whose syscall numbers differ and would skip every check below.
 *   2. x86_64 only: a syscall number with the x32 bit (0x40000000) set → KILL_PROCESS. x32 calls arrive with
 *      AUDIT_ARCH_X86_64 but other numbers (`nr | 0x40000000`), so they would skip the deny list too.
 *      Nothing in the box is an x32 program; a process that makes x32 calls is evading the filter, and
 *      dies like one making i386 calls (this is also what libseccomp and so Flatpak do with an ABI the
 *      filter does not name). The guest sees SIGSYS; bwrap reports exit code 128 + 31. Only nr -1 (no
 *      syscall at all) is exempt, as in libseccomp: it falls through to the kernel's ENOSYS.
 *   3. Each denied syscall → ERRNO(EPERM), or ERRNO(ENOSYS) where a caller must fall back rather than fail.
 *   4. `clone` whose flags ask for a new namespace → ERRNO(EPERM), so that no namespace can be made by any
 *      route (unshare and setns are denied, clone3 answers ENOSYS), whatever bwrap's own options.
 *   5. Everything else → ALLOW.
 *
 * Only the arch and the syscall number are read, except for `clone`: so the kernel's per-syscall action
 * cache (Linux 5.11+) answers every other allowed syscall without running the program at all.
 */

/** Architectures the filter is built for, named as `process.arch` names them. */
export type SeccompArch = 'x64' | 'arm64';

export const SECCOMP_ARCHES: readonly SeccompArch[] = ['x64', 'arm64'];

/** One syscall the filter denies, for documentation (README, logs). */
export interface BlockedSyscall {
  readonly name: string;
  /** Why it is denied. */
  readonly reason: string;
  /** What the call returns in the box: -1 with this errno (1 = EPERM, 38 = ENOSYS). */
  readonly errno: number;
  /** The architectures that have this syscall, and so where it is denied. */
  readonly arches: readonly SeccompArch[];
}

const EPERM = 1;
/** Answered where the caller must fall back: this is what a kernel built without the syscall says. */
const ENOSYS = 38;

/** Return values of a seccomp filter (include/uapi/linux/seccomp.h). */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x8000_0000,
  ERRNO: 0x0005_0000,
  ALLOW: 0x7fff_0000,
} as const;

/** `seccomp_data` offsets: `int nr` at 0, `u32 arch` at 4, `u64 args[6]` from 16. */
const DATA_NR = 0;
const DATA_ARCH = 4;
/** Low 32 bits of args[0] — on a little-endian ABI, the first four bytes. */
const DATA_ARG0_LOW = 16;

/** Classic-BPF opcodes (include/uapi/linux/bpf_common.h), the few the program uses. */
const BPF = {
  /** BPF_LD | BPF_W | BPF_ABS: A = 32-bit word of seccomp_data at offset k. */
  LD_W_ABS: 0x20,
  /** BPF_JMP | BPF_JEQ | BPF_K: pc += (A == k) ? jt : jf. */
  JEQ_K: 0x15,
  /** BPF_JMP | BPF_JSET | BPF_K: pc += (A & k) ? jt : jf. */
  JSET_K: 0x45,
  /** BPF_RET | BPF_K: return k. */
  RET_K: 0x06,
} as const;

/** The kernel's limit on one program (BPF_MAXINSNS). */
const BPF_MAXINSNS = 4096;

interface ArchInfo {
  /** AUDIT_ARCH_* of the native ABI (include/uapi/linux/audit.h). */
  auditArch: number;
  /** Human name, for messages. */
  kernelName: string;
  /** Syscall numbers with this bit set are the x32 ABI (x86_64 only). */
  x32Bit?: number;
  /** Number of `clone`, whose flags (args[0] on both ABIs) are checked. */
  clone: number;
}

/**
 * Both ABIs are little-endian: the AUDIT_ARCH values carry __AUDIT_ARCH_LE (0x40000000), and the program
 * is written little-endian. A big-endian aarch64 kernel would report another arch value and so kill every
 * guest at its first syscall: the filter fails closed, and the runner's start-up probe sees it.
 */
const ARCHES: Record<SeccompArch, ArchInfo> = {
  x64: { auditArch: 0xc000_003e, kernelName: 'x86_64', x32Bit: 0x4000_0000, clone: 56 },
  arm64: { auditArch: 0xc000_00b7, kernelName: 'aarch64', clone: 220 },
};

/**
 * CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET.
 * (CLONE_NEWTIME exists only for clone3 and unshare, both denied; in clone's flags its bit is the exit
 * signal.) The kernel reads only the low 32 bits of clone's flags, so the low word is the whole check.
 */
const CLONE_NEW_NAMESPACE_FLAGS = 0x7e02_0000;

interface Rule {
  name: string;
  errno: typeof EPERM | typeof ENOSYS;
  reason: string;
  /** Syscall number per architecture; absent where the architecture has no such syscall. */
  nr: Partial<Record<SeccompArch, number>>;
}

// Numbers: arch/x86/entry/syscalls/syscall_64.tbl and include/uapi/asm-generic/unistd.h (arm64). The
// unit test checks them against the installed kernel headers when those exist.
const PTRACE_FAMILY = 'reads or writes another process (the box init included; the abuse suite found this)';
const MODULES = 'loads or unloads kernel code';
const KEYRING = 'kernel keyring: not namespaced, a frequent source of kernel bugs';
const MOUNT =
  'changes the mount table (the box needs none; defence in depth behind the missing CAP_SYS_ADMIN)';
const NEW_MOUNT_API =
  'new mount API (fd-based mount): ENOSYS as in Flatpak, so a mount tool falls back to mount(2), which is denied';
const CLOCK = 'sets the host clock, which is not namespaced';
const NUMA = 'NUMA memory policy: moves or pins memory across nodes; no interpreter in the box uses it';
const NAMESPACES = 'makes or joins a namespace; the box is the only namespace the guest gets';
const IO_URING =
  'io_uring: a large, often-exploited kernel surface; ENOSYS so libuv (Node) and others fall back to threads';

const RULES: readonly Rule[] = [
  // Other processes' memory, and the box init.
  { name: 'ptrace', errno: EPERM, reason: PTRACE_FAMILY, nr: { x64: 101, arm64: 117 } },
  { name: 'process_vm_readv', errno: EPERM, reason: PTRACE_FAMILY, nr: { x64: 310, arm64: 270 } },
  { name: 'process_vm_writev', errno: EPERM, reason: PTRACE_FAMILY, nr: { x64: 311, arm64: 271 } },
  {
    name: 'kcmp',
    errno: EPERM,
    reason: 'compares kernel objects of two processes: a ptrace-mode probe (Docker: CAP_SYS_PTRACE only)',
    nr: { x64: 312, arm64: 272 },
  },
  {
    name: 'pidfd_getfd',
    errno: EPERM,
    reason: "takes a copy of another process's file descriptor: ptrace-mode access",
    nr: { x64: 438, arm64: 438 },
  },
  {
    name: 'process_madvise',
    errno: EPERM,
    reason: "advises on another process's memory: ptrace-mode access",
    nr: { x64: 440, arm64: 440 },
  },
  // Kernel code.
  { name: 'kexec_load', errno: EPERM, reason: 'replaces the running kernel', nr: { x64: 246, arm64: 104 } },
  {
    name: 'kexec_file_load',
    errno: EPERM,
    reason: 'replaces the running kernel',
    nr: { x64: 320, arm64: 294 },
  },
  { name: 'init_module', errno: EPERM, reason: MODULES, nr: { x64: 175, arm64: 105 } },
  { name: 'finit_module', errno: EPERM, reason: MODULES, nr: { x64: 313, arm64: 273 } },
  { name: 'delete_module', errno: EPERM, reason: MODULES, nr: { x64: 176, arm64: 106 } },
  {
    name: 'bpf',
    errno: EPERM,
    reason: 'eBPF programs and maps run in the kernel: a frequent privilege-escalation path',
    nr: { x64: 321, arm64: 280 },
  },
  {
    name: 'perf_event_open',
    errno: EPERM,
    reason: 'performance counters: kernel bugs and side channels; no job needs profiling',
    nr: { x64: 298, arm64: 241 },
  },
  {
    name: 'userfaultfd',
    errno: EPERM,
    reason: 'stalls kernel page faults at will: the classic tool for winning kernel race conditions',
    nr: { x64: 323, arm64: 282 },
  },
  { name: 'keyctl', errno: EPERM, reason: KEYRING, nr: { x64: 250, arm64: 219 } },
  { name: 'add_key', errno: EPERM, reason: KEYRING, nr: { x64: 248, arm64: 217 } },
  { name: 'request_key', errno: EPERM, reason: KEYRING, nr: { x64: 249, arm64: 218 } },
  // Mounts and the root directory.
  { name: 'mount', errno: EPERM, reason: MOUNT, nr: { x64: 165, arm64: 40 } },
  { name: 'umount2', errno: EPERM, reason: MOUNT, nr: { x64: 166, arm64: 39 } },
  { name: 'pivot_root', errno: EPERM, reason: MOUNT, nr: { x64: 155, arm64: 41 } },
  {
    name: 'chroot',
    errno: EPERM,
    reason:
      'the guest has no CAP_SYS_CHROOT in its user namespace, so the kernel answers EPERM already; denied anyway (as Docker and Flatpak do) so that stays true if the capability set ever changes',
    nr: { x64: 161, arm64: 51 },
  },
  { name: 'open_tree', errno: ENOSYS, reason: NEW_MOUNT_API, nr: { x64: 428, arm64: 428 } },
  { name: 'move_mount', errno: ENOSYS, reason: NEW_MOUNT_API, nr: { x64: 429, arm64: 429 } },
  { name: 'fsopen', errno: ENOSYS, reason: NEW_MOUNT_API, nr: { x64: 430, arm64: 430 } },
  { name: 'fsconfig', errno: ENOSYS, reason: NEW_MOUNT_API, nr: { x64: 431, arm64: 431 } },
  { name: 'fsmount', errno: ENOSYS, reason: NEW_MOUNT_API, nr: { x64: 432, arm64: 432 } },
  { name: 'fspick', errno: ENOSYS, reason: NEW_MOUNT_API, nr: { x64: 433, arm64: 433 } },
  { name: 'mount_setattr', errno: ENOSYS, reason: NEW_MOUNT_API, nr: { x64: 442, arm64: 442 } },
  { name: 'open_tree_attr', errno: ENOSYS, reason: NEW_MOUNT_API, nr: { x64: 467, arm64: 467 } },
  // Host-wide state.
  { name: 'swapon', errno: EPERM, reason: 'host swap configuration', nr: { x64: 167, arm64: 224 } },
  { name: 'swapoff', errno: EPERM, reason: 'host swap configuration', nr: { x64: 168, arm64: 225 } },
  {
    name: 'reboot',
    errno: EPERM,
    reason: 'reboots the host (or kills a pid namespace)',
    nr: { x64: 169, arm64: 142 },
  },
  { name: 'acct', errno: EPERM, reason: 'host process accounting', nr: { x64: 163, arm64: 89 } },
  { name: 'settimeofday', errno: EPERM, reason: CLOCK, nr: { x64: 164, arm64: 170 } },
  { name: 'clock_settime', errno: EPERM, reason: CLOCK, nr: { x64: 227, arm64: 112 } },
  { name: 'clock_adjtime', errno: EPERM, reason: CLOCK, nr: { x64: 305, arm64: 266 } },
  { name: 'adjtimex', errno: EPERM, reason: CLOCK, nr: { x64: 159, arm64: 171 } },
  {
    name: 'syslog',
    errno: EPERM,
    reason: 'the kernel log leaks host activity and kernel addresses',
    nr: { x64: 103, arm64: 116 },
  },
  { name: 'quotactl', errno: EPERM, reason: 'host disk quotas', nr: { x64: 179, arm64: 60 } },
  { name: 'quotactl_fd', errno: EPERM, reason: 'host disk quotas', nr: { x64: 443, arm64: 443 } },
  {
    name: 'open_by_handle_at',
    errno: EPERM,
    reason: 'opens a file by handle, bypassing the mount namespace (the "shocker" container escape)',
    nr: { x64: 304, arm64: 265 },
  },
  {
    name: 'name_to_handle_at',
    errno: EPERM,
    reason:
      "file handles are only useful to open_by_handle_at, and leak the host file system's inode numbers",
    nr: { x64: 303, arm64: 264 },
  },
  {
    name: 'lookup_dcookie',
    errno: EPERM,
    reason: 'oprofile path lookup (removed in Linux 6.10); present on both ABIs, denied on both',
    nr: { x64: 212, arm64: 18 },
  },
  { name: 'uselib', errno: EPERM, reason: 'obsolete a.out loader, with a history of bugs', nr: { x64: 134 } },
  {
    name: 'nfsservctl',
    errno: EPERM,
    reason: 'removed NFS server control (ENOSYS since Linux 3.1); denied for completeness',
    nr: { x64: 180, arm64: 42 },
  },
  { name: 'iopl', errno: EPERM, reason: 'raw I/O port access', nr: { x64: 172 } },
  { name: 'ioperm', errno: EPERM, reason: 'raw I/O port access', nr: { x64: 173 } },
  {
    name: 'personality',
    errno: EPERM,
    reason:
      'execution domain flags (ADDR_NO_RANDOMIZE turns off ASLR, READ_IMPLIES_EXEC makes data executable); neither python3 nor node calls it (checked with strace), so it is denied outright, queries included',
    nr: { x64: 135, arm64: 92 },
  },
  // Namespaces.
  { name: 'unshare', errno: EPERM, reason: NAMESPACES, nr: { x64: 272, arm64: 97 } },
  { name: 'setns', errno: EPERM, reason: NAMESPACES, nr: { x64: 308, arm64: 268 } },
  {
    name: 'clone3',
    errno: ENOSYS,
    reason:
      "its flags are in a struct in memory, which a seccomp filter cannot read, so clone's namespace check could be bypassed; ENOSYS makes glibc (2.34+) fall back to clone",
    nr: { x64: 435, arm64: 435 },
  },
  { name: 'io_uring_setup', errno: ENOSYS, reason: IO_URING, nr: { x64: 425, arm64: 425 } },
  { name: 'io_uring_enter', errno: ENOSYS, reason: IO_URING, nr: { x64: 426, arm64: 426 } },
  { name: 'io_uring_register', errno: ENOSYS, reason: IO_URING, nr: { x64: 427, arm64: 427 } },
  // Memory.
  {
    name: 'vmsplice',
    errno: EPERM,
    reason:
      'maps user pages into pipes: a past root exploit (2008) and page-cache bug surface; no interpreter in the box uses it',
    nr: { x64: 278, arm64: 75 },
  },
  {
    name: 'fanotify_init',
    errno: EPERM,
    reason: 'file system-wide event monitoring (Docker: CAP_SYS_ADMIN only)',
    nr: { x64: 300, arm64: 262 },
  },
  { name: 'mbind', errno: EPERM, reason: NUMA, nr: { x64: 237, arm64: 235 } },
  { name: 'migrate_pages', errno: EPERM, reason: NUMA, nr: { x64: 256, arm64: 238 } },
  { name: 'move_pages', errno: EPERM, reason: NUMA, nr: { x64: 279, arm64: 239 } },
  { name: 'get_mempolicy', errno: EPERM, reason: NUMA, nr: { x64: 239, arm64: 236 } },
  { name: 'set_mempolicy', errno: EPERM, reason: NUMA, nr: { x64: 238, arm64: 237 } },
  { name: 'set_mempolicy_home_node', errno: EPERM, reason: NUMA, nr: { x64: 450, arm64: 450 } },
];

/** What the filter denies and why: the documentation view of the rules (numbers stay internal). */
export const BLOCKED_SYSCALLS: readonly BlockedSyscall[] = Object.freeze(
  RULES.map((rule) =>
    Object.freeze({
      name: rule.name,
      reason: rule.reason,
      errno: rule.errno,
      arches: Object.freeze(SECCOMP_ARCHES.filter((arch) => rule.nr[arch] !== undefined)),
    }),
  ),
);

/** Flags of `clone` the filter answers with EPERM (any one of them). */
export const DENIED_CLONE_FLAGS = CLONE_NEW_NAMESPACE_FLAGS;

interface Instruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

const load = (offset: number): Instruction => ({ code: BPF.LD_W_ABS, jt: 0, jf: 0, k: offset });
const ret = (value: number): Instruction => ({ code: BPF.RET_K, jt: 0, jf: 0, k: value });
const jeq = (k: number, jt: number, jf: number): Instruction => ({ code: BPF.JEQ_K, jt, jf, k });
const jset = (k: number, jt: number, jf: number): Instruction => ({ code: BPF.JSET_K, jt, jf, k });
const errnoAction = (errno: number): number => (SECCOMP_RET.ERRNO | errno) >>> 0;

function archInfo(arch: string): { name: SeccompArch; info: ArchInfo } {
  for (const name of SECCOMP_ARCHES) if (name === arch) return { name, info: ARCHES[name] };
  throw new Error(
    `no seccomp filter for architecture "${arch}": only ${SECCOMP_ARCHES.join(' and ')} syscall numbers are known`,
  );
}

function buildProgram(arch: string): { name: SeccompArch; info: ArchInfo; program: Instruction[] } {
  const { name, info } = archInfo(arch);
  const program: Instruction[] = [
    load(DATA_ARCH),
    jeq(info.auditArch, 1, 0),
    ret(SECCOMP_RET.KILL_PROCESS),
    load(DATA_NR),
  ];
  if (info.x32Bit !== undefined) {
    program.push(
      // -1 is no syscall on any ABI (the kernel answers ENOSYS); like libseccomp, let it through rather than
      // kill a process for `syscall(-1)`, so both architectures treat it alike.
      jeq(0xffff_ffff, 2, 0),
      jset(info.x32Bit, 0, 1),
      ret(SECCOMP_RET.KILL_PROCESS),
    );
  }
  // One compare and one return per rule: every jump is 0 or 1 forward, far inside the u8 jump range.
  for (const rule of RULES) {
    const nr = rule.nr[name];
    if (nr !== undefined) program.push(jeq(nr, 0, 1), ret(errnoAction(rule.errno)));
  }
  program.push(
    // Not clone: skip to ALLOW. Clone: reload A with its flags and deny any namespace flag.
    jeq(info.clone, 0, 3),
    load(DATA_ARG0_LOW),
    jset(CLONE_NEW_NAMESPACE_FLAGS, 0, 1),
    ret(errnoAction(EPERM)),
    ret(SECCOMP_RET.ALLOW),
  );
  if (program.length > BPF_MAXINSNS) {
    throw new Error(`seccomp program has ${program.length} instructions, over the kernel's ${BPF_MAXINSNS}`);
  }
  return { name, info, program };
}

/**
 * The compiled filter for `arch` (default: this process's), ready to be written to the fd bwrap reads with
 * `--seccomp FD`. Throws for an architecture whose syscall numbers are not known here: running without a
 * filter must be a decision of the caller, never a silent fallback.
 *
 * bwrap reads the fd to EOF, so give it a fresh pipe or a freshly opened file per box: a file descriptor
 * shared between boxes is at EOF after the first one, and bwrap then fails on an empty program.
 */
export function seccompFilter(arch: string = process.arch): Buffer {
  return encode(buildProgram(arch).program);
}

/** `execve` and `execveat` per architecture (syscall_64.tbl; asm-generic unistd.h for arm64). */
const EXEC_SYSCALLS: Record<SeccompArch, readonly number[]> = { x64: [59, 322], arm64: [221, 281] };

/**
 * A second filter the Python wrapper installs on itself once the interpreter is up and before any guest
 * code (issue 11, hole 8): `execve` and `execveat` answer EPERM, so no program can be started from the box
 * any more — not a shell, not the interpreter itself, not a file the guest wrote — while `fork` keeps
 * working. It cannot be part of bwrap's filter, which must still let bwrap exec the interpreter. Foreign
 * ABIs (i386, x32) are killed as in the main filter, so this one also holds where the main filter is absent
 * (the `process` backend). Throws for an unknown architecture, like `seccompFilter`.
 */
export function execDenyFilter(arch: string = process.arch): Buffer {
  const { name, info } = archInfo(arch);
  const program: Instruction[] = [
    load(DATA_ARCH),
    jeq(info.auditArch, 1, 0),
    ret(SECCOMP_RET.KILL_PROCESS),
    load(DATA_NR),
  ];
  if (info.x32Bit !== undefined) program.push(jset(info.x32Bit, 0, 1), ret(SECCOMP_RET.KILL_PROCESS));
  for (const nr of EXEC_SYSCALLS[name]) program.push(jeq(nr, 0, 1), ret(errnoAction(EPERM)));
  program.push(ret(SECCOMP_RET.ALLOW));
  return encode(program);
}

function encode(program: readonly Instruction[]): Buffer {
  const bytes = Buffer.alloc(program.length * 8);
  program.forEach((instruction, index) => {
    const at = index * 8;
    bytes.writeUInt16LE(instruction.code, at);
    bytes.writeUInt8(instruction.jt, at + 2);
    bytes.writeUInt8(instruction.jf, at + 3);
    bytes.writeUInt32LE(instruction.k >>> 0, at + 4);
  });
  return bytes;
}

/** One line for logs and /readyz: what the filter for `arch` (default: this process's) does. */
export function describeSeccompFilter(arch: string = process.arch): string {
  const { name, info, program } = buildProgram(arch);
  const denied = (errno: number): string =>
    RULES.filter((rule) => rule.errno === errno && rule.nr[name] !== undefined)
      .map((rule) => rule.name)
      .join(', ');
  const killed =
    info.x32Bit === undefined ? `non-${info.kernelName} ABIs` : `non-${info.kernelName} ABIs (i386, x32)`;
  return (
    `seccomp filter (${name}, ${program.length} BPF instructions): kill on ${killed}; ` +
    `EPERM for ${denied(EPERM)}, and clone with namespace flags; ENOSYS for ${denied(ENOSYS)}; allow the rest`
  );
}
