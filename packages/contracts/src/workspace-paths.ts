/**
 * Paths inside a task's workspace: a per-task file area stored by Tandem, never the host filesystem.
 * A path is relative POSIX (`reports/q1.csv`). Anything that could name something outside the workspace,
 * or look like it does to a person or to a later decoder, is refused rather than repaired: absolute and
 * drive paths, `..`, backslashes, control characters, percent-encoded or Unicode look-alike forms of
 * those. Pure; no filesystem access.
 */
import { utf8ByteLength } from './json.js';

/** Longest workspace path, in characters. */
export const WORKSPACE_PATH_MAX_CHARS = 512;
/** Most segments (directories plus the file name) in a workspace path. */
export const WORKSPACE_PATH_MAX_SEGMENTS = 32;
/** Longest segment in UTF-8 bytes (NAME_MAX on Linux, where `run_code` sees the files). */
const SEGMENT_MAX_BYTES = 255;
/** Percent-decoding rounds tried before an ever-decoding path is refused. */
const MAX_DECODE_ROUNDS = 4;

/** A normalised workspace path, or why the raw text was refused. */
export type WorkspacePathResult = { ok: true; path: string } | { ok: false; reason: string };

/** Characters that render like `.`, `/` or `\` and that some decoders or people read as such. */
// prettier-ignore
const LOOK_ALIKES = new Set([
  0x2024, 0x2025, 0x2026, 0xfe52, 0xff0e, 0x3002, 0xff61, 0x06d4, 0x0701, 0x0702, // dots
  0x2215, 0x2044, 0xff0f, 0x29f8, 0x2571, 0x27cb, 0x0338, 0x0337, 0x1735, // slashes
  0xff3c, 0x2216, 0x29f5, 0x29f9, 0xfe68, 0x27cd, 0x2572, // backslashes
]);

/** Invisible and direction-changing characters that make a path read differently from what it is. */
function isInvisible(code: number): boolean {
  return (
    code === 0x00ad ||
    code === 0x180e ||
    (code >= 0x200b && code <= 0x200f) ||
    (code >= 0x2028 && code <= 0x202e) ||
    (code >= 0x2060 && code <= 0x2069) ||
    code === 0xfeff
  );
}

function hex(code: number): string {
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

function count(text: string, chars: string): number {
  let total = 0;
  for (const char of text) if (chars.includes(char)) total += 1;
  return total;
}

/** The first character-level problem of a text, or null. */
function characterProblem(text: string): string | null {
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code === 0) return 'NUL bytes are not allowed';
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f))
      return `control characters (${hex(code)}) are not allowed`;
    if (code === 0x5c) return 'backslashes are not allowed; separate directories with /';
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = text.charCodeAt(index + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        index += 1;
        continue;
      }
      return 'the path is not valid Unicode text';
    }
    if (code >= 0xdc00 && code <= 0xdfff) return 'the path is not valid Unicode text';
    if (LOOK_ALIKES.has(code)) return `${hex(code)} looks like . or / and is not allowed`;
    if (isInvisible(code)) return `invisible or direction-changing characters (${hex(code)}) are not allowed`;
  }
  // Compatibility forms (fullwidth, ligatures, ...) that normalise to a separator or a dot.
  const compatible = text.normalize('NFKC');
  if (compatible !== text && count(compatible, './\\%') !== count(text, './\\%'))
    return 'characters that normalise to . / \\ or % are not allowed';
  return null;
}

/** The first problem with the shape of a path (absolute, drive, UNC), or null. */
function absoluteProblem(text: string): string | null {
  if (text.startsWith('\\\\') || text.startsWith('//'))
    return 'network (UNC) paths are not allowed; use a path relative to the workspace like reports/q1.csv';
  if (text.startsWith('/') || text.startsWith('\\'))
    return 'absolute paths are not allowed; use a path relative to the workspace like reports/q1.csv';
  if (/^[A-Za-z]:/.test(text))
    return 'drive letters are not allowed; use a path relative to the workspace like reports/q1.csv';
  return null;
}

/** Whether a segment is `..` or otherwise made only of dots and spaces (beyond the harmless `.`). */
function isTraversalSegment(segment: string): boolean {
  return segment !== '.' && segment !== '' && /^[.\s]+$/.test(segment);
}

/**
 * Percent-decodes strictly: `%XX` becomes that byte, the bytes must form valid UTF-8 (overlong forms such
 * as `%c0%af` are invalid). Returns null when they don't.
 */
function percentDecode(text: string): string | null {
  const bytes: number[] = [];
  const encoder = new TextEncoder();
  for (let index = 0; index < text.length;) {
    if (text[index] === '%' && /^[0-9A-Fa-f]{2}$/.test(text.slice(index + 1, index + 3))) {
      bytes.push(Number.parseInt(text.slice(index + 1, index + 3), 16));
      index += 3;
      continue;
    }
    const codePoint = text.codePointAt(index) ?? 0;
    const char = String.fromCodePoint(codePoint);
    for (const byte of encoder.encode(char)) bytes.push(byte);
    index += char.length;
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(Uint8Array.from(bytes));
  } catch {
    return null;
  }
}

const ENCODED = /%[0-9A-Fa-f]{2}/;

/**
 * Decodes up to a few rounds and checks every decoded form, so `%2e%2e%2f`, `%252e%252e` and `%00` are
 * refused even though the path is stored as written (a later consumer might decode it).
 */
function encodedProblem(text: string): string | null {
  let current = text;
  for (let round = 0; round < MAX_DECODE_ROUNDS; round += 1) {
    if (!ENCODED.test(current)) return null;
    const decoded = percentDecode(current);
    if (decoded === null) return 'invalid or overlong percent-encoding is not allowed';
    const problem = characterProblem(decoded) ?? absoluteProblem(decoded);
    if (problem !== null) return `percent-encoded form: ${problem}`;
    const segments = decoded.split('/');
    if (segments.some((segment) => segment === '.' || isTraversalSegment(segment)))
      return 'percent-encoded . or .. segments are not allowed';
    current = decoded;
  }
  return ENCODED.test(current) ? 'too many levels of percent-encoding' : null;
}

function normalize(raw: string, allowRoot: boolean): WorkspacePathResult {
  if (typeof raw !== 'string') return { ok: false, reason: 'the path must be a string' };
  if (raw.length > WORKSPACE_PATH_MAX_CHARS)
    return { ok: false, reason: `the path is longer than ${WORKSPACE_PATH_MAX_CHARS} characters` };
  const problem = absoluteProblem(raw) ?? characterProblem(raw) ?? encodedProblem(raw);
  if (problem !== null) return { ok: false, reason: problem };
  const segments: string[] = [];
  for (const segment of raw.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') return { ok: false, reason: '`..` segments are not allowed' };
    if (isTraversalSegment(segment))
      return { ok: false, reason: 'segments made only of dots and spaces are not allowed' };
    if (utf8ByteLength(segment) > SEGMENT_MAX_BYTES)
      return { ok: false, reason: `a path segment is longer than ${SEGMENT_MAX_BYTES} bytes` };
    segments.push(segment.normalize('NFC'));
  }
  if (segments.length > WORKSPACE_PATH_MAX_SEGMENTS)
    return { ok: false, reason: `the path has more than ${WORKSPACE_PATH_MAX_SEGMENTS} segments` };
  if (segments.length === 0 && !allowRoot)
    return { ok: false, reason: 'the path is empty; name a file like reports/q1.csv' };
  return { ok: true, path: segments.join('/') };
}

/**
 * Normalises a workspace file path: relative POSIX, no leading `./`, no empty or `.` segments, NFC.
 * Refuses (never repairs) anything that could leave the workspace or disguise itself.
 */
export function normalizeWorkspacePath(raw: string): WorkspacePathResult {
  return normalize(raw, false);
}

/**
 * Normalises a directory prefix (for `list_files`) by the same rules; empty, `.` or `./` mean the
 * workspace root and give `''`.
 */
export function normalizeWorkspaceDirectory(raw: string | undefined): WorkspacePathResult {
  return normalize(raw ?? '', true);
}

/** Whether a normalised path lies in a normalised directory (`''` is the root and holds everything). */
export function isInWorkspaceDirectory(path: string, directory: string): boolean {
  return directory === '' || path.startsWith(`${directory}/`);
}
