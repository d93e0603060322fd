import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  ErrorCodes,
  TandemError,
  isErrorCode,
  toErrorShape,
  type ErrorCode,
  type ErrorShape,
} from '../src/index.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const ERRORS_SOURCE = fileURLToPath(new URL('../src/errors.ts', import.meta.url));
const README = fileURLToPath(new URL('../README.md', import.meta.url));

// A quoted `DOMAIN.REASON` literal: the shape every Tandem error code has.
const CODE_LITERAL = /(['"])([A-Z][A-Z0-9]*\.[A-Z][A-Z0-9_]*)\1/g;

/**
 * Quoted literals that look like error codes but are not (none today). Add one here, with the reason,
 * only when it never becomes an error's `code`.
 */
const NOT_ERROR_CODES: ReadonlySet<string> = new Set<string>();

/** Every code-like string literal in a TypeScript text (single or double quoted). */
function codeLiterals(text: string): string[] {
  return [...text.matchAll(CODE_LITERAL)].map((match) => match[2] ?? '');
}

/** Every `.ts` file under each `packages/*\/src` and `services/*\/src` (generated code left out). */
function sourceFiles(): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name === 'generated') continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) files.push(path);
    }
  };
  for (const group of ['packages', 'services']) {
    for (const entry of readdirSync(join(REPO_ROOT, group), { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const src = join(REPO_ROOT, group, entry.name, 'src');
      try {
        walk(src);
      } catch (error) {
        if (!(error instanceof Error && 'code' in error && error.code === 'ENOENT')) throw error;
      }
    }
  }
  return files;
}

const declared: ReadonlySet<string> = new Set<string>(Object.values(ErrorCodes));

describe('ErrorCodes', () => {
  it('declares every code-like literal used in the src folders of packages and services', () => {
    const files = sourceFiles();
    const undeclared: string[] = [];
    const found = new Set<string>();
    for (const file of files) {
      for (const literal of codeLiterals(readFileSync(file, 'utf8'))) {
        found.add(literal);
        if (!declared.has(literal) && !NOT_ERROR_CODES.has(literal)) {
          undeclared.push(`${relative(REPO_ROOT, file)}: '${literal}'`);
        }
      }
    }
    // The scan saw the tree: the migrator's and the model client's literals are there.
    expect(files.length).toBeGreaterThan(100);
    expect(found).toContain('MIGRATE.LOCK_TIMEOUT');
    expect(found).toContain('MODEL.RATE_LIMITED');
    expect(undeclared).toEqual([]);
  });

  it('finds a misspelt code in a constructor call or a code property, and nothing else', () => {
    const text = [
      `throw new TandemError('TOOL.UNKNOWN_FUNCTON', 'no such tool');`,
      `return { code: "SANDBOX.TIME_OUT", message };`,
      `const host = 'example.com'; const errno = 'ECONNRESET'; const file = 'a.B';`,
    ].join('\n');
    const literals = codeLiterals(text);
    expect(literals).toEqual(['TOOL.UNKNOWN_FUNCTON', 'SANDBOX.TIME_OUT']);
    expect(literals.filter((literal) => !declared.has(literal))).toEqual(literals);
  });

  it('has unique DOMAIN.REASON values', () => {
    const values = Object.values(ErrorCodes);
    expect(new Set(values).size).toBe(values.length);
    for (const value of values) expect(value).toMatch(/^[A-Z][A-Z0-9]*\.[A-Z][A-Z0-9_]*$/);
  });

  it('gives every code a doc comment', () => {
    const lines = readFileSync(ERRORS_SOURCE, 'utf8').split('\n');
    const entries = lines
      .map((line, index) => ({ match: /^\s+([A-Z][A-Z0-9_]*): '[A-Z0-9_.]+',$/.exec(line), index }))
      .filter((entry) => entry.match !== null);
    expect(entries).toHaveLength(Object.keys(ErrorCodes).length);
    const undocumented = entries
      .filter(({ index }) => !(lines[index - 1] ?? '').trim().endsWith('*/'))
      .map(({ match }) => match?.[1]);
    expect(undocumented).toEqual([]);
  });

  it('are all listed in the README table, by domain', () => {
    const listed = new Set<string>();
    for (const line of readFileSync(README, 'utf8').split('\n')) {
      const row = /^\| `([A-Z][A-Z0-9]*)`\s*\|(.*)\|$/.exec(line);
      if (row === null) continue;
      for (const reason of (row[2] ?? '').matchAll(/`([A-Z][A-Z0-9_]*)`/g)) {
        listed.add(`${row[1]}.${reason[1]}`);
      }
    }
    expect([...listed].sort()).toEqual([...declared].sort());
  });

  it('isErrorCode accepts declared codes only', () => {
    expect(isErrorCode('MODEL.RATE_LIMITED')).toBe(true);
    expect(isErrorCode('MIGRATE.LOCK_TIMEOUT')).toBe(true);
    expect(isErrorCode('MODEL.RATE_LIMITTED')).toBe(false);
    expect(isErrorCode('')).toBe(false);
    expect(isErrorCode(42)).toBe(false);
  });
});

describe('TandemError', () => {
  it('types its code as an ErrorCode: an undeclared code does not compile', () => {
    expectTypeOf<TandemError['code']>().toEqualTypeOf<ErrorCode>();
    // @ts-expect-error 'TOOL.UNKNOWN_FUNCTON' is misspelt: not an ErrorCode
    const misspelt = new TandemError('TOOL.UNKNOWN_FUNCTON', 'no such tool');
    // @ts-expect-error a plain string (from a wire) must be narrowed with isErrorCode first
    const unnarrowed = new TandemError(String('TOOL.UNKNOWN_FUNCTION'), 'no such tool');
    // At run time the constructor takes what it is given; the compiler is the gate.
    expect([misspelt.code, unnarrowed.code]).toEqual(['TOOL.UNKNOWN_FUNCTON', 'TOOL.UNKNOWN_FUNCTION']);
  });

  it('is permanent unless retryable is given, and keeps cause and details', () => {
    const cause = new Error('socket reset');
    const permanent = new TandemError(ErrorCodes.TASK_NOT_FOUND, 'task t1 not found');
    const retryable = new TandemError(ErrorCodes.DB_CONNECTION_LOST, 'lost', {
      retryable: true,
      cause,
      details: { attempt: 2 },
    });
    expect(permanent).toBeInstanceOf(Error);
    expect(permanent.name).toBe('TandemError');
    expect(permanent.retryable).toBe(false);
    expect(permanent.cause).toBeUndefined();
    expect(permanent.toShape()).toEqual({
      code: 'TASK.NOT_FOUND',
      message: 'task t1 not found',
      retryable: false,
    });
    expect(retryable.cause).toBe(cause);
    expect(retryable.toShape()).toEqual({
      code: 'DB.CONNECTION_LOST',
      message: 'lost',
      retryable: true,
      details: { attempt: 2 },
    });
  });

  it('fromShape keeps a declared code and turns an unknown one into INTERNAL.ERROR with the code kept', () => {
    const cause = new Error('underlying');
    const known = TandemError.fromShape(
      { code: 'MODEL.RATE_LIMITED', message: 'slow down', retryable: true, details: { status: 429 } },
      { cause },
    );
    expect(known.toShape()).toEqual({
      code: 'MODEL.RATE_LIMITED',
      message: 'slow down',
      retryable: true,
      details: { status: 429 },
    });
    expect(known.cause).toBe(cause);
    const unknown = TandemError.fromShape({ code: 'FUTURE.CODE', message: 'newer sender', retryable: false });
    expect(unknown.toShape()).toEqual({
      code: 'INTERNAL.ERROR',
      message: 'newer sender',
      retryable: false,
      details: { receivedCode: 'FUTURE.CODE' },
    });
  });
});

describe('toErrorShape', () => {
  it('uses toShape for a TandemError, subclasses included', () => {
    class SubError extends TandemError {
      override readonly name = 'SubError';
    }
    const error = new SubError(ErrorCodes.SANDBOX_UNAVAILABLE, 'busy', {
      retryable: true,
      details: { n: 1 },
    });
    expect(error).toBeInstanceOf(TandemError);
    expect(toErrorShape(error)).toEqual({
      code: 'SANDBOX.UNAVAILABLE',
      message: 'busy',
      retryable: true,
      details: { n: 1 },
    });
  });

  it('reads a look-alike from another copy of the package by its dotted code, message and retryable', () => {
    const lookAlike = Object.assign(new Error('permanent'), { code: 'TOOL.INVALID_JSON', retryable: false });
    expect(toErrorShape(lookAlike)).toEqual({
      code: 'TOOL.INVALID_JSON',
      message: 'permanent',
      retryable: false,
    });
    // retryable only when it is exactly true; details are not read from a look-alike.
    const plain: unknown = { code: 'X.Y', message: 'text', retryable: 'yes', details: { a: 1 } };
    expect(toErrorShape(plain)).toEqual({ code: 'X.Y', message: 'text', retryable: false });
    expect(toErrorShape({ code: 'X.Y', message: 'text', retryable: true })).toEqual({
      code: 'X.Y',
      message: 'text',
      retryable: true,
    });
  });

  it('turns anything else into a retryable INTERNAL.ERROR', () => {
    const internal = (message: string): ErrorShape => ({ code: 'INTERNAL.ERROR', message, retryable: true });
    // A Node error code has no dot; a non-string code or message is not read.
    const nodeError = Object.assign(new Error('connection reset'), { code: 'ECONNRESET' });
    expect(toErrorShape(nodeError)).toEqual(internal('connection reset'));
    expect(toErrorShape({ code: 42, message: 'numeric code' })).toEqual(internal('[object Object]'));
    expect(toErrorShape({ code: 'X.Y', message: 7 })).toEqual(internal('[object Object]'));
    expect(toErrorShape(new Error('boom'))).toEqual(internal('boom'));
    expect(toErrorShape('a string')).toEqual(internal('a string'));
    expect(toErrorShape(null)).toEqual(internal('null'));
    expect(toErrorShape(undefined)).toEqual(internal('undefined'));
  });
});
