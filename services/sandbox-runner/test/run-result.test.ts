import { ErrorCodes, SANDBOX_EVENT_MAX_BYTES } from '@tandem/contracts';
import { describe, expect, it } from 'vitest';
import {
  interruptedRun,
  killedBeforeStart,
  outcomeOnly,
  runEventFields,
  runRecord,
  storedRunEventFields,
} from '../src/domain/run-result.js';
import type { SandboxResult } from '../src/sandbox/types.js';

// The decisions of the sandbox-run-requested consumer, without NATS, Postgres or a sandbox.

function result(overrides: Partial<SandboxResult> = {}): SandboxResult {
  return {
    outcome: 'ok',
    stdout: 'ran\n',
    stderr: '',
    stdoutTruncated: false,
    stderrTruncated: false,
    value: 42,
    exitCode: 0,
    signal: null,
    durationMs: 12,
    files: [],
    deletedFiles: [],
    filesTruncated: false,
    ...overrides,
  };
}

describe('killedBeforeStart', () => {
  it('kills a job whose task run ended, and starts one whose run is live or not stored yet', () => {
    for (const status of ['completed', 'failed', 'cancelled']) expect(killedBeforeStart(status)).toBe(true);
    for (const status of ['running', 'waiting_approval', null]) expect(killedBeforeStart(status)).toBe(false);
  });
});

describe('runRecord', () => {
  it('keeps written and deleted files, and drops names outside the workspace rules as truncation', () => {
    const { record, dropped } = runRecord(
      result({
        files: [
          { path: 'out/a.txt', content: Buffer.from('a') },
          { path: '../escape', content: Buffer.from('b') },
          { path: './not-normal', content: Buffer.from('c') },
        ],
        deletedFiles: ['gone.txt'],
      }),
    );
    expect(dropped).toBe(2);
    expect(record.filesTruncated).toBe(true);
    expect(record.files.map((file) => [file.path, file.size, file.deleted])).toEqual([
      ['out/a.txt', 1, false],
      ['gone.txt', 0, true],
    ]);
  });

  it('stores a value that is not JSON as no value, and keeps a run without dropped files untruncated', () => {
    const { record, dropped } = runRecord(result({ value: () => 1 }));
    expect(dropped).toBe(0);
    expect(record.value).toBeNull();
    expect(record.filesTruncated).toBe(false);
  });
});

describe('runEventFields', () => {
  it('makes text safe and bounds the event parts', () => {
    const fields = runEventFields(
      { ...runRecord(result({ stdout: 'a\u0000b', errorMessage: 'bad \u0000' })).record, errorCode: 'X.Y' },
      [{ path: 'f\u0000', size: 1, deleted: false }],
    );
    expect(fields).toMatchObject({
      outcome: 'ok',
      errorCode: 'X.Y',
      stdout: 'a\uFFFDb',
      errorMessage: 'bad \uFFFD',
      files: [{ path: 'f\uFFFD', size: 1, deleted: false }],
      value: 42,
    });
  });

  it('cuts output beyond the event bound and says it was cut', () => {
    const big = 'x'.repeat(SANDBOX_EVENT_MAX_BYTES);
    const fields = runEventFields(runRecord(result({ stdout: big })).record, []);
    expect(fields.stdout.length).toBeLessThan(big.length);
    expect(fields.stdoutTruncated).toBe(true);
  });

  it('republishes a stored run with the same fields as its first event', () => {
    const record = runRecord(result()).record;
    const first = runEventFields(record, []);
    const again = storedRunEventFields({
      ...record,
      errorCode: null,
      errorMessage: null,
      value: 42,
      files: [],
    });
    expect(again).toEqual(first);
  });
});

describe('interruptedRun', () => {
  it('ends the job sandbox_error with SANDBOX.INTERRUPTED and no output', () => {
    const { record, event } = interruptedRun(3);
    expect(record).toMatchObject({ outcome: 'sandbox_error', errorCode: ErrorCodes.SANDBOX_INTERRUPTED });
    expect(record.errorMessage).toContain('3 times');
    expect(event).toMatchObject({ outcome: 'sandbox_error', errorCode: 'SANDBOX.INTERRUPTED', stdout: '' });
  });
});

describe('outcomeOnly', () => {
  it('keeps the outcome and drops every part', () => {
    const fields = outcomeOnly(runEventFields(runRecord(result()).record, []));
    expect(fields).toMatchObject({ outcome: 'ok', stdout: '', value: null, valueTruncated: true, files: [] });
  });
});
