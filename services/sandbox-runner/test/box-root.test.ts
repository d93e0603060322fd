import { describe, expect, test } from 'vitest';

import { bindArgs, elfInterpreter, parseLoaderList, uniqueBinds } from '../src/sandbox/box-root.js';

/** A 64-bit little-endian ELF header with the given program headers (type, and PT_INTERP's text). */
function elf(
  headers: ReadonlyArray<{ type: number; text?: string }>,
  options: { bits?: 32 | 64 } = {},
): Buffer {
  const buffer = Buffer.alloc(1024);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46]).copy(buffer, 0);
  buffer[4] = options.bits === 32 ? 1 : 2;
  buffer[5] = 1;
  buffer.writeBigUInt64LE(64n, 32); // e_phoff
  buffer.writeUInt16LE(56, 54); // e_phentsize
  buffer.writeUInt16LE(headers.length, 56); // e_phnum
  let textAt = 64 + headers.length * 56;
  headers.forEach((header, index) => {
    const at = 64 + index * 56;
    buffer.writeUInt32LE(header.type, at);
    if (header.text !== undefined) {
      const bytes = Buffer.from(`${header.text}\0`, 'utf8');
      bytes.copy(buffer, textAt);
      buffer.writeBigUInt64LE(BigInt(textAt), at + 8); // p_offset
      buffer.writeBigUInt64LE(BigInt(bytes.length), at + 32); // p_filesz
      textAt += bytes.length;
    }
  });
  return buffer;
}

const PT_LOAD = 1;
const PT_INTERP = 3;

describe('elfInterpreter', () => {
  test('names the loader of a dynamically linked executable', () => {
    const head = elf([{ type: PT_LOAD }, { type: PT_INTERP, text: '/lib64/ld-linux-x86-64.so.2' }]);
    expect(elfInterpreter(head)).toBe('/lib64/ld-linux-x86-64.so.2');
  });

  test('is null for a static executable, a 32-bit one, a script, a relative loader or a cut header', () => {
    expect(elfInterpreter(elf([{ type: PT_LOAD }]))).toBeNull();
    expect(elfInterpreter(elf([{ type: PT_INTERP, text: '/lib/ld-linux.so.2' }], { bits: 32 }))).toBeNull();
    expect(elfInterpreter(Buffer.from('#!/bin/sh\necho hi\n'.padEnd(128, ' ')))).toBeNull();
    expect(elfInterpreter(elf([{ type: PT_INTERP, text: 'ld.so' }]))).toBeNull();
    expect(elfInterpreter(elf([{ type: PT_INTERP, text: '/lib64/ld.so' }]).subarray(0, 100))).toBeNull();
  });
});

// What `/lib64/ld-linux-x86-64.so.2 --list /usr/bin/python3.11` printed on Debian 12 (addresses vary).
const PYTHON_LIST = [
  '\tlinux-vdso.so.1 (0x00007ffd6a1e5000)',
  '\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f8c9193a000)',
  '\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f8c9191b000)',
  '\tlibexpat.so.1 => /lib/x86_64-linux-gnu/libexpat.so.1 (0x00007f8c918f0000)',
  '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f8c9170e000)',
  '\t/lib64/ld-linux-x86-64.so.2 (0x00007f8c91a2d000)',
  '',
].join('\n');

describe('parseLoaderList', () => {
  test('lists the resolved libraries and the loader, not the vDSO', () => {
    expect(parseLoaderList(PYTHON_LIST, '/usr/bin/python3')).toEqual([
      '/lib/x86_64-linux-gnu/libm.so.6',
      '/lib/x86_64-linux-gnu/libz.so.1',
      '/lib/x86_64-linux-gnu/libexpat.so.1',
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib64/ld-linux-x86-64.so.2',
    ]);
  });

  test('a static file needs nothing', () => {
    expect(parseLoaderList('\tstatically linked\n', '/x')).toEqual([]);
  });

  test('a library the loader cannot find is an error naming it, not a box that fails later', () => {
    expect(() => parseLoaderList('\tlibffi.so.8 => not found\n', '/usr/lib/python3.11/_ctypes.so')).toThrow(
      /_ctypes\.so needs libffi\.so\.8/,
    );
  });
});

describe('uniqueBinds and bindArgs', () => {
  test('one bind per box path (the first wins), parents before what is inside them', () => {
    const binds = uniqueBinds([
      { hostPath: '/usr/lib/x86_64-linux-gnu/libc.so.6', boxPath: '/lib/x86_64-linux-gnu/libc.so.6' },
      { hostPath: '/usr/lib/python3.11/x', boxPath: '/usr/lib/python3.11/x' },
      { hostPath: '/usr/lib/python3.11', boxPath: '/usr/lib/python3.11' },
      { hostPath: '/elsewhere/libc.so.6', boxPath: '/lib/x86_64-linux-gnu/libc.so.6' },
    ]);
    expect(binds.map((bind) => bind.boxPath)).toEqual([
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/usr/lib/python3.11',
      '/usr/lib/python3.11/x',
    ]);
    expect(binds[0]?.hostPath).toBe('/usr/lib/x86_64-linux-gnu/libc.so.6');
    expect(bindArgs(binds.slice(0, 1))).toEqual([
      '--ro-bind',
      '/usr/lib/x86_64-linux-gnu/libc.so.6',
      '/lib/x86_64-linux-gnu/libc.so.6',
    ]);
  });
});
