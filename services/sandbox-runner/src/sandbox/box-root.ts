/**
 * The file view of a box (issue 11, hole 8): only the interpreter, the loader and shared libraries it
 * needs, and for Python its standard library — no shell, no coreutils, no other system binary. A compute
 * box needs none of them, and a guest that finds none cannot start one.
 *
 * The pure half (parsing ELF headers and the loader's `--list` output, turning a file list into bwrap
 * arguments) is unit-tested; `describeBoxRoot` asks the host once which files those are.
 */
import { execFile } from 'node:child_process';
import { chmod, link, lstat, mkdir, open, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

import type { SandboxLanguage } from './types.js';

const execFileAsync = promisify(execFile);

/** One host file or directory bound read-only into the box, at `boxPath`. */
export interface BoxBind {
  hostPath: string;
  boxPath: string;
}

/** What each language's box holds of the host. */
export type BoxRoot = Readonly<Record<SandboxLanguage, readonly BoxBind[]>>;

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const PT_INTERP = 3;
/** Bytes of a binary read to find its program interpreter: the ELF header and its program headers. */
export const ELF_HEADER_BYTES = 4096;

/**
 * The program interpreter (dynamic loader) an ELF executable names in its PT_INTERP header, or null for a
 * file that is not a 64-bit little-endian ELF or names none (a static binary). Pure.
 */
export function elfInterpreter(head: Buffer): string | null {
  // e_ident: magic, EI_CLASS 2 (64-bit), EI_DATA 1 (little-endian): the only ABIs the runner supports.
  if (head.length < 64 || !head.subarray(0, 4).equals(ELF_MAGIC) || head[4] !== 2 || head[5] !== 1) {
    return null;
  }
  const programHeaders = Number(head.readBigUInt64LE(32));
  const entrySize = head.readUInt16LE(54);
  const count = head.readUInt16LE(56);
  for (let index = 0; index < count; index += 1) {
    const at = programHeaders + index * entrySize;
    if (at + 56 > head.length) return null;
    if (head.readUInt32LE(at) !== PT_INTERP) continue;
    const offset = Number(head.readBigUInt64LE(at + 8));
    const size = Number(head.readBigUInt64LE(at + 32));
    if (size < 2 || offset + size > head.length) return null;
    const name = head.subarray(offset, offset + size - 1).toString('utf8');
    return path.isAbsolute(name) ? name : null;
  }
  return null;
}

/**
 * The libraries in the output of `<loader> --list <file>` (what `ldd` prints): the absolute paths the
 * loader resolved, the loader itself included, and not the kernel's vDSO. Throws when a library was not
 * found: a box without it would fail later, at a guest's import, with a less clear message. Pure.
 */
export function parseLoaderList(output: string, file: string): string[] {
  const found: string[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    if (line === '' || line === 'statically linked') continue;
    const resolved = /^(\S+) => (.+?)(?: \(0x[0-9a-f]+\))?$/.exec(line);
    if (resolved !== null) {
      const target = resolved[2] ?? '';
      if (target === 'not found')
        throw new Error(`${file} needs ${resolved[1] ?? '?'}, which the loader cannot find`);
      if (path.isAbsolute(target)) found.push(target);
      continue;
    }
    const direct = /^(\/\S+) \(0x[0-9a-f]+\)$/.exec(line);
    if (direct !== null) found.push(direct[1] ?? '');
  }
  return found;
}

/** Binds in a stable order, one per box path (the first wins), for a deterministic bwrap command line. */
export function uniqueBinds(binds: readonly BoxBind[]): BoxBind[] {
  const byBoxPath = new Map<string, BoxBind>();
  for (const bind of binds) if (!byBoxPath.has(bind.boxPath)) byBoxPath.set(bind.boxPath, bind);
  return [...byBoxPath.values()].sort((a, b) => a.boxPath.localeCompare(b.boxPath));
}

/** bwrap arguments that bind each file read-only at its box path. Pure. */
export function bindArgs(binds: readonly BoxBind[]): string[] {
  return binds.flatMap((bind) => ['--ro-bind', bind.hostPath, bind.boxPath]);
}

/** Budget for one host tool run while describing the box root (the loader, the interpreter). */
const PROBE_TIMEOUT_MS = 10_000;

async function readHead(file: string): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(ELF_HEADER_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, ELF_HEADER_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** The shared libraries `file` loads (and the loader), as the host's own loader resolves them. */
async function librariesOf(loader: string, file: string): Promise<string[]> {
  const { stdout } = await execFileAsync(loader, ['--list', file], {
    env: {},
    cwd: '/',
    timeout: PROBE_TIMEOUT_MS,
    maxBuffer: 1024 * 1024,
  });
  return parseLoaderList(stdout, file);
}

/** Each library bound at the path the loader asks for, from the file it resolves to on the host. */
async function libraryBinds(libraries: readonly string[]): Promise<BoxBind[]> {
  return Promise.all(
    [...new Set(libraries)].map(async (library) => ({ hostPath: await realpath(library), boxPath: library })),
  );
}

/** An interpreter and everything it loads: the binary at its configured path, its loader and libraries. */
async function interpreterBinds(binary: string): Promise<{ loader: string; binds: BoxBind[] }> {
  const hostPath = await realpath(binary);
  const loader = elfInterpreter(await readHead(hostPath));
  if (loader === null) throw new Error(`${binary} is not a dynamically linked 64-bit ELF executable`);
  const binds = [{ hostPath, boxPath: binary }, ...(await libraryBinds(await librariesOf(loader, hostPath)))];
  return { loader, binds };
}

/**
 * Asks the host, once per backend, which files each language's box needs:
 *
 * - Python: the interpreter at `pythonPath`, its loader and libraries, its standard library directory
 *   (read from the interpreter itself; `-I -S` puts nothing else on `sys.path`) and the libraries of the
 *   standard library's extension modules (`lib-dynload`: libffi for ctypes, libssl, libsqlite3, ...);
 * - JavaScript: Node at `nodePath`, its loader and libraries (the QuickJS packages are bound separately);
 * - both: `/etc/ld.so.cache`, so the loader finds the libraries where the host's loader did.
 */
export async function describeBoxRoot(options: { pythonPath: string; nodePath: string }): Promise<BoxRoot> {
  const cache = await realpath('/etc/ld.so.cache').then(
    (hostPath): BoxBind[] => [{ hostPath, boxPath: '/etc/ld.so.cache' }],
    (): BoxBind[] => [],
  );

  const python = await interpreterBinds(options.pythonPath);
  const { stdout } = await execFileAsync(
    options.pythonPath,
    ['-I', '-S', '-c', 'import os; print(os.path.dirname(os.__file__))'],
    { env: {}, cwd: '/', timeout: PROBE_TIMEOUT_MS },
  );
  const stdlib = stdout.trim();
  if (!path.isAbsolute(stdlib)) throw new Error(`${options.pythonPath} names no standard library directory`);
  const dynload = path.join(stdlib, 'lib-dynload');
  const extensions = (await readdir(dynload).catch(() => [])).filter((name) => name.endsWith('.so'));
  const extensionLibraries = (
    await Promise.all(extensions.map((name) => librariesOf(python.loader, path.join(dynload, name))))
  ).flat();
  const pythonBinds = uniqueBinds([
    ...python.binds,
    { hostPath: await realpath(stdlib), boxPath: stdlib },
    ...(await libraryBinds(extensionLibraries)),
    ...cache,
  ]);

  const node = await interpreterBinds(options.nodePath);
  const javascriptBinds = uniqueBinds([...node.binds, ...cache]);
  return { python: pythonBinds, javascript: javascriptBinds };
}

/** GNU coreutils `cp`, run on the host to hard-link a directory tree (`cp -al`). */
const CP_PATH = '/usr/bin/cp';

/** Makes `relative` (and its parents) under `root`, each directory 0755 whatever the umask. */
async function makeDirs(root: string, relative: string): Promise<void> {
  let current = root;
  for (const part of relative.split('/').filter((piece) => piece !== '')) {
    current = path.join(current, part);
    const info = await lstat(current).catch(() => null);
    if (info === null) {
      await mkdir(current);
      // Only directories made here: the hard-linked files are the host's own inodes and keep their modes.
      await chmod(current, 0o755);
    } else if (!info.isDirectory()) {
      throw new Error(`${current} exists and is not a directory`);
    }
  }
}

/**
 * Builds the box's root once, in `dir`, from hard links to the host's files (and `cp -al` of directories):
 * the same files as the binds, but bound into each box as one read-only tree instead of one mount per file.
 * Thirty mounts per box were measured to cost nothing alone but to serialise parallel box starts on the
 * kernel's mount locks (8 in flight: 1.4x the wall time of one bind). Also makes the mount points the box
 * adds on top (`/proc`, `/box`, ...), since bwrap cannot create them in a read-only bind.
 *
 * Resolves false when the host's files cannot be linked from `dir` (another file system, or
 * `protected_hardlinks` for a runner that does not own them): the caller then binds file by file.
 */
export async function linkBoxRoot(
  binds: readonly BoxBind[],
  dir: string,
  mountPoints: readonly string[],
): Promise<boolean> {
  try {
    for (const bind of binds) {
      await makeDirs(dir, path.dirname(bind.boxPath));
      const target = path.join(dir, bind.boxPath);
      if ((await stat(bind.hostPath)).isDirectory()) {
        await execFileAsync(CP_PATH, ['-al', '--', bind.hostPath, target], {
          env: {},
          cwd: '/',
          timeout: PROBE_TIMEOUT_MS,
        });
      } else {
        await link(bind.hostPath, target);
      }
    }
    for (const mountPoint of mountPoints) await makeDirs(dir, mountPoint);
    return true;
  } catch {
    return false;
  }
}
