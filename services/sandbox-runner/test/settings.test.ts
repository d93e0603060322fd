import { describe, expect, test } from 'vitest';

import { DEFAULTS, resolveSettings } from '../src/sandbox/domain/settings.js';
import { execDenyFilter, seccompFilter } from '../src/sandbox/seccomp.js';

const ROOT = { uid: 0, tmpdir: '/tmp', arch: 'x64' };
const USER = { uid: 1000, tmpdir: '/var/tmp', arch: 'x64' };

describe('resolveSettings', () => {
  test('a root runner drops to the sandbox user and gets a tmpfs working directory', () => {
    const settings = resolveSettings({}, ROOT);
    expect(settings).toMatchObject({
      isRoot: true,
      credentials: DEFAULTS.sandboxUser,
      workStorage: 'tmpfs',
      scratchRoot: '/tmp',
      isolated: true,
      // On tmpfs the mounts bind first: the file-size limit is a backstop above both of them.
      fileBytes: DEFAULTS.workBytes + 1024 * 1024,
    });
    expect(resolveSettings({ sandboxUser: { uid: 5, gid: 6 } }, ROOT).credentials).toEqual({
      uid: 5,
      gid: 6,
    });
  });

  test('any other runner keeps its own uid and a plain directory capped per file', () => {
    const settings = resolveSettings({ sandboxUser: { uid: 5, gid: 6 }, workBytes: 4096 }, USER);
    expect(settings).toMatchObject({
      isRoot: false,
      credentials: undefined,
      workStorage: 'directory',
      scratchRoot: '/var/tmp',
      fileBytes: 4096,
    });
  });

  test('every default applies, and an option overrides it', () => {
    const settings = resolveSettings({}, USER);
    for (const key of [
      'bwrapPath',
      'pythonPath',
      'maxProcesses',
      'cpuSeconds',
      'poolSize',
      'defaultMemoryMb',
    ] as const) {
      expect(settings[key], key).toBe(DEFAULTS[key]);
    }
    expect(resolveSettings({ maxProcesses: 3, scratchRoot: '/s' }, USER)).toMatchObject({
      maxProcesses: 3,
      scratchRoot: '/s',
    });
  });

  test('the syscall filter is on by default, off on request and without a box; the exec filter stays', () => {
    expect(resolveSettings({}, USER).seccomp).toEqual(seccompFilter('x64'));
    expect(resolveSettings({ seccomp: 'off' }, USER).seccomp).toBeNull();
    const bare = resolveSettings({ isolation: 'none' }, USER);
    expect(bare).toMatchObject({ isolated: false, seccomp: null });
    expect(bare.execFilter).toEqual(execDenyFilter('x64'));
  });

  test('an architecture without syscall numbers: the bwrap backend refuses, the process backend runs without filters', () => {
    const riscv = { ...USER, arch: 'riscv64' };
    expect(() => resolveSettings({}, riscv)).toThrow();
    expect(resolveSettings({ isolation: 'none' }, riscv)).toMatchObject({ seccomp: null, execFilter: null });
  });
});
