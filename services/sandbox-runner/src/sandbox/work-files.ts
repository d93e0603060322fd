import {
  closeSync,
  constants as fsConstants,
  fstatSync,
  lstatSync,
  openSync,
  opendirSync,
  readSync,
  type Dir,
} from 'node:fs';
import { lchown, mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';

import type { SandboxFile } from './types.js';

/**
 * The job's working directory on the host side: placing the job's files before the guest starts, and
 * collecting what the guest left behind after it exited. The collector runs as the runner (root in
 * production) over a tree the guest controlled, so it never follows a symlink anywhere: every directory is
 * opened with O_DIRECTORY|O_NOFOLLOW and every child is reached through its parent's descriptor
 * (`/proc/self/fd/<parent>/<name>`, which is openat() without a native binding), so even a guest process
 * still dying after a kill cannot swap a directory for a link to /etc between two steps. Files are opened
 * with O_NOFOLLOW|O_NONBLOCK (a FIFO cannot block us) and checked with fstat before a byte is read.
 *
 * The collector uses synchronous calls on raw descriptors (measured here: 20,000 small files in 70 ms,
 * against 1.2 s through promise FileHandles) and gives the event loop a turn every few milliseconds, so
 * other jobs' pipes keep flowing while it works.
 */

/** Longest accepted path of a job file, in UTF-8 bytes (a 512-character workspace path fits). */
export const MAX_PATH_BYTES = 2048;
/** Longest accepted path segment, in UTF-8 bytes (NAME_MAX). */
export const MAX_SEGMENT_BYTES = 255;

/** Caps on collecting the working directory. */
export interface CollectLimits {
  maxFiles: number;
  maxFileBytes: number;
  maxTotalFileBytes: number;
  /** Directory entries read in all; beyond, the walk stops (a guest may leave a million empty files). */
  maxEntries: number;
  /** Directory levels below the working directory that are walked. */
  maxDepth: number;
  /** Wall-clock budget of the walk in milliseconds. */
  budgetMs: number;
}

/** What was collected. */
export interface CollectedFiles {
  files: SandboxFile[];
  deletedFiles: string[];
  filesTruncated: boolean;
}

const DIRECTORY_FLAGS = fsConstants.O_RDONLY | fsConstants.O_DIRECTORY | fsConstants.O_NOFOLLOW;
const FILE_FLAGS =
  fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY;
const CREATE_FLAGS = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;

/** Why `value` is not an acceptable job file path, or null when it is. */
export function filePathProblem(value: string): string | null {
  if (value === '') return 'is empty';
  if (value.includes('\0')) return 'contains NUL';
  if (value.startsWith('/')) return 'is absolute';
  // A lone surrogate would be written as U+FFFD: the file would not be at the path the caller named.
  if (Buffer.from(value, 'utf8').toString('utf8') !== value) return 'is not valid Unicode';
  if (Buffer.byteLength(value) > MAX_PATH_BYTES) return `is longer than ${MAX_PATH_BYTES} bytes`;
  for (const segment of value.split('/')) {
    if (segment === '') return 'has an empty segment';
    if (segment === '.' || segment === '..') return `has a '${segment}' segment`;
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES) {
      return `has a segment longer than ${MAX_SEGMENT_BYTES} bytes`;
    }
  }
  return null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Checks a job's `files`; throws a TypeError (a caller bug) for anything but well-formed distinct paths. */
export function assertValidFiles(files: unknown): SandboxFile[] {
  if (files === undefined) return [];
  if (!Array.isArray(files)) throw new TypeError('sandbox job files must be an array');
  const paths = new Set<string>();
  const checked: SandboxFile[] = [];
  for (const file of files as unknown[]) {
    if (!isRecord(file) || typeof file.path !== 'string') {
      throw new TypeError('sandbox job file must have a string path');
    }
    const problem = filePathProblem(file.path);
    if (problem !== null)
      throw new TypeError(`sandbox job file path ${JSON.stringify(file.path)} ${problem}`);
    if (!Buffer.isBuffer(file.content)) {
      throw new TypeError(`sandbox job file ${JSON.stringify(file.path)} has content that is not a Buffer`);
    }
    if (paths.has(file.path))
      throw new TypeError(`sandbox job file ${JSON.stringify(file.path)} is repeated`);
    paths.add(file.path);
    checked.push({ path: file.path, content: file.content });
  }
  for (const filePath of paths) {
    const segments = filePath.split('/');
    for (let end = 1; end < segments.length; end += 1) {
      const parent = segments.slice(0, end).join('/');
      if (paths.has(parent)) {
        throw new TypeError(
          `sandbox job file ${JSON.stringify(parent)} is also a directory of ${JSON.stringify(filePath)}`,
        );
      }
    }
  }
  return checked;
}

/**
 * Writes validated job files into a fresh, empty working directory, owned by `owner` when given. Nothing
 * else has touched the directory yet, so full paths are safe; O_EXCL|O_NOFOLLOW still refuse any surprise.
 */
export async function writeInputFiles(
  workDir: string,
  files: readonly SandboxFile[],
  owner?: { uid: number; gid: number },
): Promise<void> {
  const made = new Set<string>();
  for (const file of files) {
    const segments = file.path.split('/');
    let relative = '';
    for (const segment of segments.slice(0, -1)) {
      relative = relative === '' ? segment : `${relative}/${segment}`;
      if (made.has(relative)) continue;
      const directory = path.join(workDir, relative);
      await mkdir(directory, { mode: 0o700 });
      if (owner !== undefined) await lchown(directory, owner.uid, owner.gid);
      made.add(relative);
    }
    const handle = await open(path.join(workDir, file.path), CREATE_FLAGS, 0o600);
    try {
      await handle.writeFile(file.content);
      if (owner !== undefined) await handle.chown(owner.uid, owner.gid);
    } finally {
      await handle.close();
    }
  }
}

function errorCode(error: unknown): string | undefined {
  return isRecord(error) && typeof error.code === 'string' ? error.code : undefined;
}

/** A path through an open directory's descriptor: resolving it never re-walks the names above. */
function under(directory: number, name: string): string {
  return `/proc/self/fd/${directory}/${name}`;
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already closed or never valid: nothing to release.
  }
}

/** Reads from the start of `fd` until EOF or `limit` bytes, whichever comes first. */
function readUpTo(fd: number, limit: number, sizeHint: number): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  while (total < limit) {
    // First read sized by fstat (+1 to see EOF); more only if the file grew meanwhile.
    const buffer = Buffer.alloc(Math.min(limit - total, total === 0 ? sizeHint + 1 : 64 * 1024));
    const bytesRead = readSync(fd, buffer, 0, buffer.length, total);
    if (bytesRead === 0) break;
    chunks.push(buffer.subarray(0, bytesRead));
    total += bytesRead;
  }
  return Buffer.concat(chunks, total);
}

type EntryKind = 'file' | 'directory' | 'other';

interface Entry {
  name: string;
  kind: EntryKind;
}

interface Frame {
  fd: number;
  /** '' for the working directory, else `a/b/`. */
  prefix: string;
  depth: number;
  entries: Entry[] | undefined;
  index: number;
}

function byName(left: Entry, right: Entry): number {
  return left.name < right.name ? -1 : left.name > right.name ? 1 : 0;
}

/** Longest stretch of synchronous work before the event loop gets a turn. */
const SLICE_MS = 5;

/**
 * Collects the regular files of `workDir` that are new or differ from `inputs`, and the inputs that are
 * gone. Depth-first with an explicit stack (no recursion), children in name order, so files come out
 * sorted by path segment by segment and every cap cuts the same way each time. Never throws for anything
 * the guest did; bounded by `limits` in entries read, depth, bytes read and time.
 */
export async function collectWorkFiles(
  workDir: string,
  inputs: readonly SandboxFile[],
  limits: CollectLimits,
): Promise<CollectedFiles> {
  const given = new Map(inputs.map((file) => [file.path, file.content]));
  const seen = new Set<string>();
  const files: SandboxFile[] = [];
  const deadline = performance.now() + limits.budgetMs;
  let sliceEnds = performance.now() + SLICE_MS;
  let visited = 0;
  let totalBytes = 0;
  // Something changed that is not in `files`.
  let truncated = false;
  // Part of the tree was never looked at, so an input not seen may still be there.
  let incomplete = false;
  // A count or total cap was reached: nothing after this point (in path order) is taken.
  let closed = false;
  // The entry or time budget ran out: no further directory is read.
  let exhausted = false;

  const breathe = async (): Promise<void> => {
    const now = performance.now();
    if (now > deadline) {
      exhausted = true;
      incomplete = true;
    }
    if (now > sliceEnds) {
      await nextTurn();
      sliceEnds = performance.now() + SLICE_MS;
    }
  };

  const listDirectory = async (frame: Frame): Promise<Entry[]> => {
    const entries: Entry[] = [];
    if (exhausted) {
      incomplete = true;
      return entries;
    }
    let directory: Dir;
    try {
      // latin1 maps each byte to one code unit, so the name's bytes come back exactly.
      directory = opendirSync(`/proc/self/fd/${frame.fd}`, { encoding: 'latin1', bufferSize: 256 });
    } catch {
      incomplete = true;
      return entries;
    }
    try {
      for (let dirent = directory.readSync(); dirent !== null; dirent = directory.readSync()) {
        visited += 1;
        if (visited > limits.maxEntries) {
          exhausted = true;
          incomplete = true;
          break;
        }
        await breathe();
        if (exhausted) break;
        const bytes = Buffer.from(dirent.name, 'latin1');
        const name = bytes.toString('utf8');
        if (!Buffer.from(name, 'utf8').equals(bytes)) {
          // Not UTF-8: it has no path to report (and no input can be under it).
          incomplete = true;
          continue;
        }
        let kind: EntryKind = dirent.isFile() ? 'file' : dirent.isDirectory() ? 'directory' : 'other';
        const known =
          kind !== 'other' ||
          dirent.isSymbolicLink() ||
          dirent.isFIFO() ||
          dirent.isSocket() ||
          dirent.isBlockDevice() ||
          dirent.isCharacterDevice();
        if (!known) {
          // The file system did not say (DT_UNKNOWN): ask it, still without following a link.
          try {
            const info = lstatSync(under(frame.fd, name));
            kind = info.isFile() ? 'file' : info.isDirectory() ? 'directory' : 'other';
          } catch {
            continue;
          }
        }
        entries.push({ name, kind });
      }
    } catch {
      incomplete = true;
    } finally {
      directory.closeSync();
    }
    return entries.sort(byName);
  };

  const considerFile = (parent: number, name: string, relative: string): void => {
    let fd: number;
    try {
      fd = openSync(under(parent, name), FILE_FLAGS);
    } catch (error) {
      // ELOOP: it is a symlink now; ENOENT: it is gone; ENXIO: a socket. None is a file to collect.
      if (!['ELOOP', 'ENOENT', 'ENXIO'].includes(errorCode(error) ?? '')) truncated = true;
      return;
    }
    try {
      const info = fstatSync(fd);
      if (!info.isFile()) return;
      seen.add(relative);
      const original = given.get(relative);
      let content: Buffer | undefined;
      if (original !== undefined && info.size === original.length) {
        content = readUpTo(fd, original.length + 1, info.size);
        if (content.equals(original)) return;
      }
      if (
        info.size > limits.maxFileBytes ||
        (content !== undefined && content.length > limits.maxFileBytes)
      ) {
        truncated = true;
        return;
      }
      if (files.length >= limits.maxFiles || totalBytes + info.size > limits.maxTotalFileBytes) {
        truncated = true;
        closed = true;
        return;
      }
      content ??= readUpTo(fd, limits.maxFileBytes + 1, info.size);
      if (content.length > limits.maxFileBytes) {
        truncated = true;
        return;
      }
      if (totalBytes + content.length > limits.maxTotalFileBytes) {
        truncated = true;
        closed = true;
        return;
      }
      files.push({ path: relative, content });
      totalBytes += content.length;
    } catch {
      truncated = true;
    } finally {
      closeQuietly(fd);
    }
  };

  const stack: Frame[] = [];
  try {
    stack.push({
      fd: openSync(workDir, DIRECTORY_FLAGS),
      prefix: '',
      depth: 0,
      entries: undefined,
      index: 0,
    });
    while (stack.length > 0 && !closed) {
      const frame = stack[stack.length - 1];
      if (frame === undefined) break;
      frame.entries ??= await listDirectory(frame);
      const entry = frame.entries[frame.index];
      if (entry === undefined) {
        stack.pop();
        closeQuietly(frame.fd);
        continue;
      }
      frame.index += 1;
      await breathe();
      if (performance.now() > deadline) {
        incomplete = true;
        break;
      }
      if (entry.kind === 'other') continue;
      const relative = `${frame.prefix}${entry.name}`;
      if (Buffer.byteLength(relative) > MAX_PATH_BYTES) {
        incomplete = true;
        continue;
      }
      if (entry.kind === 'file') {
        considerFile(frame.fd, entry.name, relative);
        continue;
      }
      if (frame.depth + 1 > limits.maxDepth) {
        incomplete = true;
        continue;
      }
      try {
        const fd = openSync(under(frame.fd, entry.name), DIRECTORY_FLAGS);
        stack.push({ fd, prefix: `${relative}/`, depth: frame.depth + 1, entries: undefined, index: 0 });
      } catch {
        incomplete = true;
      }
    }
  } catch {
    // The working directory itself could not be opened: report nothing, and say so.
    incomplete = true;
  } finally {
    for (const frame of stack) closeQuietly(frame.fd);
  }
  if (closed || incomplete) {
    truncated = true;
    for (const file of inputs) {
      if (!seen.has(file.path) && isRegularFileAt(workDir, file.path)) seen.add(file.path);
    }
  }
  const deletedFiles = inputs
    .map((file) => file.path)
    .filter((filePath) => !seen.has(filePath))
    .sort();
  return { files, deletedFiles, filesTruncated: truncated };
}

/** Whether a regular file (not a link) is at `relative` under `workDir`, walking with O_NOFOLLOW. */
function isRegularFileAt(workDir: string, relative: string): boolean {
  const segments = relative.split('/');
  const last = segments.pop();
  if (last === undefined) return false;
  let current: number | undefined;
  try {
    current = openSync(workDir, DIRECTORY_FLAGS);
    for (const segment of segments) {
      const next: number = openSync(under(current, segment), DIRECTORY_FLAGS);
      closeQuietly(current);
      current = next;
    }
    return lstatSync(under(current, last)).isFile();
  } catch {
    return false;
  } finally {
    if (current !== undefined) closeQuietly(current);
  }
}
