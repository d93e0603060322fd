import { describe, expect, test } from 'vitest';

import {
  QUICKJS_BOX_ROOT,
  boxLaunch,
  buildBwrapArgs,
  guestCommand,
  probeCommand,
  processLimitOptions,
  rootMountPoints,
  tmpfsOptions,
  wrapperFiles,
} from '../src/sandbox/domain/bwrap-args.js';
import { BOX_FILES, PYTHON_WRAPPER, READY_MARKER } from '../src/sandbox/guest-wrappers.js';
import { QUICKJS_HOST } from '../src/sandbox/quickjs-host.js';

const BOX = {
  root: [{ hostPath: '/tmp/root', boxPath: '/' }],
  boxDir: '/scratch/job/box',
  workDir: '/scratch/job/work',
  tmpBytes: 1024,
  seccompFd: 5,
  command: ['/usr/bin/python3', '-c', 'pass'],
};

/** The value after each occurrence of `flag`. */
function valuesOf(args: readonly string[], flag: string): string[] {
  return args.flatMap((arg, index) => (arg === flag ? [args[index + 1] ?? ''] : []));
}

describe('buildBwrapArgs', () => {
  test('unshares every namespace, forbids nested user namespaces, drops capabilities, and starts a session', () => {
    const args = buildBwrapArgs(BOX);
    for (const flag of [
      '--unshare-all',
      '--unshare-user',
      '--disable-userns',
      '--die-with-parent',
      '--new-session',
    ]) {
      expect(args).toContain(flag);
    }
    expect(valuesOf(args, '--cap-drop')).toEqual(['ALL']);
    expect(valuesOf(args, '--hostname')).toEqual(['sandbox']);
  });

  test('binds the root, /box read-only and /work read-write, with a size-capped /tmp, and makes / and /dev read-only', () => {
    const args = buildBwrapArgs({ ...BOX, binds: [{ hostPath: '/tmp/qjs', boxPath: QUICKJS_BOX_ROOT }] });
    const pairs = (flag: string): string[][] =>
      args.flatMap((arg, index) => (arg === flag ? [[args[index + 1] ?? '', args[index + 2] ?? '']] : []));
    expect(pairs('--ro-bind')).toEqual([
      ['/tmp/root', '/'],
      ['/scratch/job/box', '/box'],
      ['/tmp/qjs', QUICKJS_BOX_ROOT],
    ]);
    expect(pairs('--bind')).toEqual([['/scratch/job/work', '/work']]);
    expect(valuesOf(args, '--size')).toEqual(['1024']);
    expect(args[args.indexOf('--size') + 2]).toBe('--tmpfs');
    expect(valuesOf(args, '--remount-ro')).toEqual(['/dev', '/']);
    expect(valuesOf(args, '--chdir')).toEqual(['/work']);
    // The root comes first: every later mount lands inside it.
    expect(args.indexOf('/tmp/root')).toBeLessThan(args.indexOf('--proc'));
  });

  test('clears the environment and sets exactly PATH, HOME, TMPDIR and LANG', () => {
    const args = buildBwrapArgs(BOX);
    const env = Object.fromEntries(
      args.flatMap((arg, index) => (arg === '--setenv' ? [[args[index + 1], args[index + 2]]] : [])),
    );
    expect(env).toEqual({ PATH: '/usr/bin:/bin', HOME: '/tmp', TMPDIR: '/tmp', LANG: 'C.UTF-8' });
    expect(args.indexOf('--clearenv')).toBeGreaterThan(-1);
    expect(args.indexOf('--clearenv')).toBeLessThan(args.indexOf('--setenv'));
  });

  test('names the seccomp fd only when there is a filter, and the hold fds only when asked', () => {
    expect(valuesOf(buildBwrapArgs(BOX), '--seccomp')).toEqual(['5']);
    expect(buildBwrapArgs({ ...BOX, seccompFd: null })).not.toContain('--seccomp');
    expect(buildBwrapArgs(BOX)).not.toContain('--info-fd');
    const held = buildBwrapArgs({ ...BOX, hold: { infoFd: 6, blockFd: 7 } });
    expect(valuesOf(held, '--info-fd')).toEqual(['6']);
    expect(valuesOf(held, '--block-fd')).toEqual(['7']);
  });

  test('ends with -- and the command, so nothing of the command is read as an option', () => {
    const args = buildBwrapArgs({ ...BOX, command: ['/usr/bin/node', '--help'] });
    expect(args.slice(-3)).toEqual(['--', '/usr/bin/node', '--help']);
    expect(args.indexOf('--')).toBe(args.length - 3);
  });
});

const SETTINGS = {
  isolated: true,
  pythonPath: '/usr/bin/python3',
  nodePath: '/usr/bin/node',
  prlimitPath: '/usr/bin/prlimit',
  bwrapPath: '/usr/bin/bwrap',
  maxProcesses: 64,
  fileBytes: 2048,
  cpuSeconds: 610,
  execFilter: Buffer.from([1, 2, 3]),
};
const DIRS = { boxDir: '/scratch/job/box', workDir: '/scratch/job/work' };

describe('guestCommand', () => {
  test('Python in a box: the wrapper at /box with its process, file and CPU limits and the exec filter', () => {
    expect(guestCommand(SETTINGS, 'python', DIRS, QUICKJS_BOX_ROOT)).toEqual([
      '/usr/bin/python3',
      '-I',
      '-S',
      `/box/${BOX_FILES.pythonWrapper}`,
      '/box',
      '64',
      '2048',
      '610',
      `/box/${BOX_FILES.execFilter}`,
    ]);
  });

  test('Python without a box: host paths, no process limit (it would count across the uid), no filter file when none', () => {
    const command = guestCommand({ ...SETTINGS, isolated: false, execFilter: null }, 'python', DIRS, '/q');
    expect(command.slice(3)).toEqual([
      `/scratch/job/box/${BOX_FILES.pythonWrapper}`,
      '/scratch/job/box',
      '-1',
      '2048',
      '610',
      '-',
    ]);
  });

  test('JavaScript in a box: node and the QuickJS host, the engine at /qjs; without a box behind prlimit', () => {
    const boxed = guestCommand(SETTINGS, 'javascript', DIRS, QUICKJS_BOX_ROOT);
    expect(boxed[0]).toBe('/usr/bin/node');
    expect(boxed.slice(-4)).toEqual([`/box/${BOX_FILES.javascriptHost}`, QUICKJS_BOX_ROOT, '/box', '/work']);
    const bare = guestCommand({ ...SETTINGS, isolated: false }, 'javascript', DIRS, '/host/qjs');
    expect(bare.slice(0, 5)).toEqual(['/usr/bin/prlimit', ...processLimitOptions(SETTINGS), '--']);
    expect(bare.slice(-3)).toEqual(['/host/qjs', '/scratch/job/box', '/scratch/job/work']);
  });
});

describe('boxLaunch', () => {
  const command = ['/usr/bin/python3', 'run.py'];
  const bwrapArgs = ['--unshare-all', '--', ...command];

  test('Python: bwrap itself; JavaScript: prlimit exec-ing bwrap with the per-process limits', () => {
    expect(boxLaunch(SETTINGS, 'python', command, bwrapArgs)).toEqual({
      file: '/usr/bin/bwrap',
      args: bwrapArgs,
    });
    expect(boxLaunch(SETTINGS, 'javascript', command, bwrapArgs)).toEqual({
      file: '/usr/bin/prlimit',
      args: ['--core=0', '--fsize=2048', '--cpu=610', '--', '/usr/bin/bwrap', ...bwrapArgs],
    });
  });

  test('without a box: the guest command itself', () => {
    expect(boxLaunch({ ...SETTINGS, isolated: false }, 'python', command, bwrapArgs)).toEqual({
      file: '/usr/bin/python3',
      args: ['run.py'],
    });
  });
});

describe('what a box starts with', () => {
  test('the wrapper files per language, the exec filter only where there is one', () => {
    expect(wrapperFiles('javascript', SETTINGS.execFilter)).toEqual([
      [BOX_FILES.javascriptHost, QUICKJS_HOST],
    ]);
    expect(wrapperFiles('python', SETTINGS.execFilter)).toEqual([
      [BOX_FILES.pythonWrapper, PYTHON_WRAPPER],
      [BOX_FILES.execFilter, SETTINGS.execFilter],
    ]);
    expect(wrapperFiles('python', null)).toEqual([[BOX_FILES.pythonWrapper, PYTHON_WRAPPER]]);
  });

  test('mount points of a linked root, /qjs for JavaScript only', () => {
    expect(rootMountPoints('python')).toEqual(['/proc', '/dev', '/tmp', '/box', '/work']);
    expect(rootMountPoints('javascript')).toContain(QUICKJS_BOX_ROOT);
  });

  test('the tmpfs working directory is capped, owned by the sandbox user, and noexec, nosuid, nodev', () => {
    expect(tmpfsOptions({ workBytes: 4096, workInodes: 10 }, { uid: 65534, gid: 65533 }).split(',')).toEqual([
      'size=4096',
      'nr_inodes=10',
      'mode=0700',
      'uid=65534',
      'gid=65533',
      'nosuid',
      'nodev',
      'noexec',
    ]);
  });

  test('the probe box writes the ready marker with the interpreter alone', () => {
    const command = probeCommand('/usr/bin/python3');
    expect(command.slice(0, 4)).toEqual(['/usr/bin/python3', '-I', '-S', '-c']);
    expect(command[4]).toContain(JSON.stringify(READY_MARKER));
  });
});
