import { describe, expect, test } from 'vitest';

import {
  COLLECT_BOUNDS,
  FILE_DEFAULTS,
  JAVASCRIPT_HOST_BYTES,
  JAVASCRIPT_MIN_HEAP_BYTES,
  assertValidJob,
  collectLimits,
  goLine,
  oversizedFiles,
  wrapperMemoryBytes,
} from '../src/sandbox/domain/job.js';
import type { SandboxJob } from '../src/sandbox/types.js';

const JOB: SandboxJob = {
  language: 'python',
  code: 'result = 1',
  limits: { timeoutMs: 250.2, maxOutputBytes: 10 },
};
const MB = 1024 * 1024;

describe('assertValidJob', () => {
  test('returns the input as JSON (null when absent) and the files', () => {
    expect(assertValidJob(JOB)).toEqual({ inputJson: 'null', files: [] });
    const file = { path: 'a.txt', content: Buffer.from('x') };
    expect(assertValidJob({ ...JOB, input: { a: [1] }, files: [file] })).toEqual({
      inputJson: '{"a":[1]}',
      files: [file],
    });
  });

  test.each([
    ['an unknown language', { language: 'ruby' }, /unsupported sandbox language: ruby/],
    ['code that is not a string', { code: 42 }, /code must be a string/],
    ['input that is not JSON', { input: () => 1 }, /input is not JSON/],
  ])('rejects %s', (_what, change, message) => {
    expect(() => assertValidJob({ ...JOB, ...change } as unknown as SandboxJob)).toThrow(message);
  });

  test.each([
    [{ timeoutMs: 0 }, /invalid timeoutMs/],
    [{ timeoutMs: Number.NaN }, /invalid timeoutMs/],
    [{ maxOutputBytes: 1.5 }, /invalid maxOutputBytes/],
    [{ memoryMb: 0 }, /invalid memoryMb/],
    [{ maxFiles: -1 }, /invalid maxFiles/],
    [{ maxTotalFileBytes: 0.5 }, /invalid maxTotalFileBytes/],
  ])('rejects limits %o', (limits, message) => {
    expect(() => assertValidJob({ ...JOB, limits: { ...JOB.limits, ...limits } })).toThrow(message);
  });
});

describe('the go line', () => {
  test('carries no memory limit when the job names none, and the timeout rounded up', () => {
    expect(wrapperMemoryBytes(JOB)).toBe(0);
    expect(goLine(JOB)).toBe('0 251\n');
  });

  test('Python gets the whole limit; JavaScript the limit less the host, at least the minimum heap', () => {
    const limited = { ...JOB, limits: { ...JOB.limits, memoryMb: 256 } };
    expect(wrapperMemoryBytes(limited)).toBe(256 * MB);
    expect(wrapperMemoryBytes({ ...limited, language: 'javascript' })).toBe(256 * MB - JAVASCRIPT_HOST_BYTES);
    const tiny = { ...JOB, language: 'javascript' as const, limits: { ...JOB.limits, memoryMb: 16 } };
    expect(wrapperMemoryBytes(tiny)).toBe(JAVASCRIPT_MIN_HEAP_BYTES);
  });
});

describe('files and collection', () => {
  test('files larger together than the working directory are refused, naming both sizes', () => {
    const files = [
      { path: 'a', content: Buffer.alloc(6) },
      { path: 'b', content: Buffer.alloc(5) },
    ];
    expect(oversizedFiles(files, 11)).toBeNull();
    expect(oversizedFiles(files, 10)).toBe(
      "the job's files (11 bytes) do not fit the working directory (10 bytes)",
    );
  });

  test("collection caps are the job's, else the defaults, with the backend's entry cap", () => {
    expect(collectLimits(JOB, 7)).toEqual({ ...FILE_DEFAULTS, ...COLLECT_BOUNDS, maxEntries: 7 });
    const own = { ...JOB, limits: { ...JOB.limits, maxFiles: 0, maxFileBytes: 1, maxTotalFileBytes: 2 } };
    expect(collectLimits(own, 7)).toMatchObject({ maxFiles: 0, maxFileBytes: 1, maxTotalFileBytes: 2 });
  });
});
