import { describe, expect, test } from 'vitest';

import type { BoxProcessOutcome } from '../src/sandbox/box-process.js';
import {
  decodeCapped,
  earlyResult,
  emptyResult,
  interpretOutcome,
  withCgroupStats,
} from '../src/sandbox/domain/outcome.js';
import { READY_MARKER } from '../src/sandbox/guest-wrappers.js';
import type { SandboxJob } from '../src/sandbox/types.js';

const JOB: SandboxJob = {
  language: 'python',
  code: 'result = 1',
  limits: { timeoutMs: 500, maxOutputBytes: 100 },
};
const CONTEXT = { bwrapPath: '/usr/bin/bwrap', maxResultBytes: 4096, memoryMb: 256 };

function bytes(text: string, truncated = false): { bytes: Buffer; truncated: boolean } {
  return { bytes: Buffer.from(text, 'utf8'), truncated };
}

/** What the supervisor saw of a box that started, ran and exited 0 after reporting `report`. */
function observed(overrides: Partial<BoxProcessOutcome> & { report?: string } = {}): BoxProcessOutcome {
  const { report, ...rest } = overrides;
  return {
    spawnError: null,
    exitCode: 0,
    signal: null,
    stdout: bytes(''),
    stderr: bytes(''),
    result: bytes(`${READY_MARKER}${report ?? ''}`),
    killReason: null,
    endedByReport: false,
    durationMs: 12,
    ...rest,
  };
}

describe('interpretOutcome', () => {
  test('an ok report with exit 0 is ok with its value, streams and duration', () => {
    const result = interpretOutcome(
      JOB,
      observed({ report: '{"status":"ok","value":{"a":1}}', stdout: bytes('hi\n') }),
      CONTEXT,
    );
    expect(result).toEqual({
      outcome: 'ok',
      value: { a: 1 },
      stdout: 'hi\n',
      stderr: '',
      stdoutTruncated: false,
      stderrTruncated: false,
      exitCode: 0,
      signal: null,
      durationMs: 12,
    });
  });

  test('exit 0 without a report (the program exited itself) is ok with no value', () => {
    expect(interpretOutcome(JOB, observed(), CONTEXT)).toMatchObject({ outcome: 'ok', value: null });
  });

  test('a binary that could not be started is a sandbox_error naming it', () => {
    const result = interpretOutcome(
      JOB,
      observed({ spawnError: new Error('ENOENT'), exitCode: null }),
      CONTEXT,
    );
    expect(result).toMatchObject({
      outcome: 'sandbox_error',
      errorMessage: 'could not start bubblewrap at /usr/bin/bwrap: ENOENT',
    });
  });

  test.each([
    ['timeout', 'timeout', 'the program exceeded its time limit of 500 ms'],
    ['stdout_limit', 'output_limit', 'stdout exceeded 100 bytes'],
    ['stderr_limit', 'output_limit', 'stderr exceeded 100 bytes'],
    ['result_limit', 'output_limit', 'the result exceeded 4096 bytes'],
    ['aborted', 'killed', 'the run was aborted by the runner'],
  ] as const)('a kill for %s is %s, whatever the report said', (killReason, outcome, errorMessage) => {
    const result = interpretOutcome(
      JOB,
      observed({ killReason, exitCode: null, signal: 'SIGKILL', report: '{"status":"ok","value":1}' }),
      CONTEXT,
    );
    expect(result).toMatchObject({ outcome, errorMessage, signal: 'SIGKILL', exitCode: null, value: null });
  });

  test("bwrap's 128 + n exit code is the guest's death by signal n", () => {
    expect(interpretOutcome(JOB, observed({ exitCode: 128 + 9 }), CONTEXT)).toMatchObject({
      outcome: 'killed',
      exitCode: null,
      signal: 'SIGKILL',
      errorMessage: 'the program was killed by SIGKILL (not by the runner)',
    });
    expect(interpretOutcome(JOB, observed({ exitCode: 128 + 11 }), CONTEXT)).toMatchObject({
      outcome: 'error',
      signal: 'SIGSEGV',
      errorMessage: 'the program was killed by SIGSEGV',
    });
  });

  test('a box ended by the runner after the report counts as the exit code the report implies', () => {
    const ok = observed({
      endedByReport: true,
      exitCode: null,
      signal: 'SIGKILL',
      report: '{"status":"ok","value":2}',
    });
    expect(interpretOutcome(JOB, ok, CONTEXT)).toMatchObject({
      outcome: 'ok',
      exitCode: 0,
      signal: null,
      value: 2,
    });
    const failed = observed({
      endedByReport: true,
      exitCode: null,
      signal: 'SIGKILL',
      report: '{"status":"error","kind":"exception","message":"boom"}',
    });
    expect(interpretOutcome(JOB, failed, CONTEXT)).toMatchObject({
      outcome: 'error',
      exitCode: 1,
      errorMessage: 'boom',
    });
  });

  test('an interpreter that never wrote the ready marker is a sandbox_error with the end of its stderr', () => {
    const result = interpretOutcome(
      JOB,
      observed({ result: bytes(''), exitCode: 1, stderr: bytes('a\nb\nc\nd\n') }),
      CONTEXT,
    );
    expect(result).toMatchObject({
      outcome: 'sandbox_error',
      errorMessage: 'the sandbox did not start the python interpreter: b c d',
    });
  });

  test('an interpreter that ran out of memory before it started is memory_limit when the job set one', () => {
    const job: SandboxJob = { ...JOB, limits: { ...JOB.limits, memoryMb: 1 } };
    const start = observed({ result: bytes(''), exitCode: 1, stderr: bytes('Fatal: out of memory') });
    expect(interpretOutcome(job, start, CONTEXT)).toMatchObject({
      outcome: 'memory_limit',
      errorMessage: 'the memory limit of 1 MB is too small to start the python interpreter',
    });
    // Without a limit of its own the job's failure is the sandbox's.
    expect(interpretOutcome(JOB, start, CONTEXT).outcome).toBe('sandbox_error');
  });

  test("error reports: memory names the job's limit, timeout is timeout, others are errors", () => {
    const report = (kind: string, message: string): BoxProcessOutcome =>
      observed({ exitCode: 1, report: JSON.stringify({ status: 'error', kind, message }) });
    expect(interpretOutcome(JOB, report('memory', 'MemoryError'), CONTEXT)).toMatchObject({
      outcome: 'memory_limit',
      errorMessage: "MemoryError (the job's memory limit is 256 MB)",
    });
    expect(interpretOutcome(JOB, report('timeout', 'interrupted'), CONTEXT)).toMatchObject({
      outcome: 'timeout',
      errorMessage: 'interrupted',
    });
    expect(interpretOutcome(JOB, report('exception', 'ValueError: x'), CONTEXT)).toMatchObject({
      outcome: 'error',
      errorMessage: 'ValueError: x',
    });
  });

  test('an error report followed by exit 0 is still an error', () => {
    const result = interpretOutcome(
      JOB,
      observed({ report: '{"status":"error","kind":"exception","message":"boom"}' }),
      CONTEXT,
    );
    expect(result).toMatchObject({
      outcome: 'error',
      errorMessage: 'exit code 0 after an error report: boom',
    });
  });

  test('an unreadable report is an error saying why', () => {
    expect(interpretOutcome(JOB, observed({ report: '{nope' }), CONTEXT)).toMatchObject({
      outcome: 'error',
      errorMessage: expect.stringContaining('invalid JSON') as unknown,
    });
  });

  test('V8 aborting on heap exhaustion is memory_limit for JavaScript only', () => {
    const abort = observed({
      exitCode: 128 + 6,
      stderr: bytes('FATAL ERROR: JavaScript heap out of memory'),
    });
    expect(interpretOutcome({ ...JOB, language: 'javascript' }, abort, CONTEXT)).toMatchObject({
      outcome: 'memory_limit',
      signal: 'SIGABRT',
    });
    expect(interpretOutcome(JOB, abort, CONTEXT)).toMatchObject({ outcome: 'error', signal: 'SIGABRT' });
  });

  test('a plain non-zero exit is an error naming the code', () => {
    expect(interpretOutcome(JOB, observed({ exitCode: 3 }), CONTEXT)).toMatchObject({
      outcome: 'error',
      exitCode: 3,
      errorMessage: 'the program exited with code 3',
    });
  });
});

describe('decodeCapped', () => {
  test('drops a multi-byte character cut by the cap, and only then', () => {
    const euro = Buffer.from('ab€', 'utf8');
    expect(decodeCapped({ bytes: euro.subarray(0, 4), truncated: true })).toBe('ab');
    expect(decodeCapped({ bytes: euro, truncated: true })).toBe('ab€');
    // Not truncated: the bytes are what the guest wrote, replacement character included.
    expect(decodeCapped({ bytes: euro.subarray(0, 4), truncated: false })).toBe('ab\uFFFD');
  });
});

describe('withCgroupStats', () => {
  const ok = interpretOutcome(JOB, observed({ report: '{"status":"ok","value":1}' }), CONTEXT);

  test('adds the peak memory, or null without one', () => {
    expect(withCgroupStats(ok, { peakMemoryBytes: 1234, oomKilled: false }, null, 256)).toMatchObject({
      outcome: 'ok',
      value: 1,
      peakMemoryBytes: 1234,
    });
    expect(withCgroupStats(ok, null, null, 256).peakMemoryBytes).toBeNull();
  });

  test("an OOM kill the runner did not cause is memory_limit naming the job's limit", () => {
    expect(withCgroupStats(ok, { peakMemoryBytes: 9, oomKilled: true }, null, 128)).toMatchObject({
      outcome: 'memory_limit',
      value: null,
      errorMessage: 'the program went over its memory limit of 128 MB',
    });
  });

  test("after the runner's own kill the kill's outcome stands", () => {
    const timedOut = interpretOutcome(JOB, observed({ killReason: 'timeout', exitCode: null }), CONTEXT);
    expect(withCgroupStats(timedOut, { peakMemoryBytes: 9, oomKilled: true }, 'timeout', 128).outcome).toBe(
      'timeout',
    );
  });
});

describe('early results', () => {
  test('carry the outcome and message on an empty result', () => {
    expect(earlyResult('killed', 'aborted')).toEqual({
      ...emptyResult(),
      outcome: 'killed',
      errorMessage: 'aborted',
    });
    expect(emptyResult()).toMatchObject({
      files: [],
      deletedFiles: [],
      filesTruncated: false,
      durationMs: 0,
    });
  });
});
