import { ErrorCodes, StepFinished, TandemError } from '@tandem/contracts';
import { MigrationError } from '@tandem/db';
import { describe, expect, it } from 'vitest';
import { isStackOverflow, readPayload } from '../src/consumer.js';
import { parseMaxDeliveriesAdvisory } from '../src/dead-letters.js';
import {
  defaultNakDelayMs,
  entityOfSuffix,
  formatIssues,
  maxDeliveriesAdvisorySubject,
  permanentFailure,
  streamConfigFor,
} from '../src/index.js';

describe('permanentFailure', () => {
  it('treats a non-retryable TandemError as permanent and a retryable one as not', () => {
    expect(permanentFailure(new TandemError('TOOL.UNKNOWN_FUNCTION', 'no such tool'))).toEqual({
      code: 'TOOL.UNKNOWN_FUNCTION',
      message: 'no such tool',
    });
    expect(permanentFailure(new TandemError('MODEL.TIMEOUT', 'slow', { retryable: true }))).toBeNull();
  });

  it('sees the subclasses of TandemError by their own retryable (MigrationError here)', () => {
    const failed = new MigrationError('MIGRATE.APPLY_FAILED', 'migration x failed and was rolled back');
    expect(failed).toBeInstanceOf(TandemError);
    expect(permanentFailure(failed)).toEqual({
      code: 'MIGRATE.APPLY_FAILED',
      message: 'migration x failed and was rolled back',
    });
    const locked = new MigrationError('MIGRATE.LOCK_TIMEOUT', 'another migration holds the lock', {
      retryable: true,
    });
    expect(permanentFailure(locked)).toBeNull();
  });

  it('retries a transaction that lost its database connection (nak, redeliver)', () => {
    const lost = new TandemError(ErrorCodes.DB_CONNECTION_LOST, 'the database connection was lost', {
      retryable: true,
    });
    expect(permanentFailure(lost)).toBeNull();
  });

  it('accepts a duck-typed error only with an explicit retryable: false', () => {
    expect(permanentFailure({ code: 'PLAN.EMPTY', message: 'empty', retryable: false })).toEqual({
      code: 'PLAN.EMPTY',
      message: 'empty',
    });
    // A pg or Node error has a `code` too, but nothing says it is permanent.
    expect(permanentFailure(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBeNull();
    expect(permanentFailure({ code: 'PLAN.EMPTY', message: 'empty', retryable: true })).toBeNull();
    expect(permanentFailure(new Error('boom'))).toBeNull();
    expect(permanentFailure('boom')).toBeNull();
    expect(permanentFailure(null)).toBeNull();
  });
});

function stackOverflow(): unknown {
  const recurse = (depth: number): number => recurse(depth + 1) + 1;
  try {
    recurse(0);
  } catch (error) {
    return error;
  }
  throw new Error('the stack did not overflow');
}

describe('stack overflows', () => {
  it('are recognised and permanent as BUS.STACK_OVERFLOW', () => {
    const error = stackOverflow();
    expect(isStackOverflow(error)).toBe(true);
    expect(permanentFailure(error)).toEqual({
      code: ErrorCodes.BUS_STACK_OVERFLOW,
      message:
        'the stack overflowed while handling the message (RangeError: Maximum call stack size exceeded)',
    });
  });

  it('are told apart from other RangeErrors, which stay retryable', () => {
    const other = new RangeError('Invalid array length');
    expect(isStackOverflow(other)).toBe(false);
    expect(permanentFailure(other)).toBeNull();
    expect(isStackOverflow({ name: 'RangeError', message: 'Maximum call stack size exceeded' })).toBe(false);
  });
});

describe('readPayload', () => {
  const limits = { maxBytes: 64, maxDepth: 3 };
  const bytes = (text: string) => new TextEncoder().encode(text);

  it('parses JSON within the limits', () => {
    expect(readPayload(bytes('{"a":[[1]]}'), limits)).toEqual({ ok: true, body: { a: [[1]] } });
  });

  it('refuses, in order, too many bytes, bad UTF-8, too deep, then bad JSON, each with its code', () => {
    expect(readPayload(new Uint8Array(65).fill(0xff), limits)).toEqual({
      ok: false,
      code: ErrorCodes.BUS_PAYLOAD_TOO_LARGE,
      reason: 'payload is 65 bytes; the limit is 64',
    });
    expect(readPayload(new Uint8Array([0xff, 0x7b]), limits)).toMatchObject({
      ok: false,
      code: ErrorCodes.BUS_UNPARSEABLE,
    });
    expect(readPayload(bytes(`${'['.repeat(30)}"unterminated`), limits)).toEqual({
      ok: false,
      code: ErrorCodes.BUS_PAYLOAD_TOO_DEEP,
      reason: 'payload nests more than 3 levels deep (at offset 4)',
    });
    expect(readPayload(bytes('{"a":'), limits)).toMatchObject({
      ok: false,
      code: ErrorCodes.BUS_UNPARSEABLE,
    });
  });

  it('stops at the depth limit on a 1,000,000-deep payload', () => {
    const deep = bytes('['.repeat(1_000_000));
    expect(readPayload(deep, { maxBytes: 2_000_000, maxDepth: 64 })).toMatchObject({
      code: ErrorCodes.BUS_PAYLOAD_TOO_DEEP,
    });
  });
});

describe('parseMaxDeliveriesAdvisory', () => {
  it('reads the server advisory', () => {
    const advisory = {
      type: 'io.nats.jetstream.advisory.v1.max_deliver',
      id: 'abc',
      timestamp: '2026-11-26T06:00:00Z',
      stream: 'TANDEM_TASK',
      consumer: 'TANDEM_planner',
      stream_seq: 42,
      deliveries: 5,
    };
    expect(parseMaxDeliveriesAdvisory(advisory)).toEqual({
      stream: 'TANDEM_TASK',
      consumer: 'TANDEM_planner',
      streamSeq: 42,
      deliveries: 5,
    });
  });

  it('rejects anything else', () => {
    expect(parseMaxDeliveriesAdvisory(null)).toBeNull();
    expect(
      parseMaxDeliveriesAdvisory({ stream: 'S', consumer: 'C', stream_seq: '42', deliveries: 5 }),
    ).toBeNull();
    expect(
      parseMaxDeliveriesAdvisory({ stream: 'S', consumer: 'C', stream_seq: 0, deliveries: 5 }),
    ).toBeNull();
    expect(parseMaxDeliveriesAdvisory({ stream: 'S', stream_seq: 1, deliveries: 5 })).toBeNull();
  });

  it('names the advisory subject after stream and consumer', () => {
    expect(maxDeliveriesAdvisorySubject('TANDEM_TASK', 'TANDEM_planner')).toBe(
      '$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.TANDEM_TASK.TANDEM_planner',
    );
  });
});

describe('formatIssues', () => {
  it('lists zod issues with their paths', () => {
    const result = StepFinished.envelope.safeParse({ id: 'x', data: { taskId: 'nope' } });
    expect(result.success).toBe(false);
    if (result.success) return;
    const reason = formatIssues(result.error.issues);
    expect(reason).toContain('id: ');
    expect(reason).toContain('data.taskId: ');
  });

  it('caps a long list', () => {
    const issues = Array.from({ length: 25 }, (_, index) => ({ path: [`f${index}`], message: 'bad' }));
    expect(formatIssues(issues)).toMatch(/f19: bad; and 5 more$/);
    expect(formatIssues([{ path: [], message: 'Expected object' }])).toBe('(root): Expected object');
  });
});

describe('defaultNakDelayMs', () => {
  it('doubles from about 1 s and stays under about 60 s', () => {
    for (let run = 0; run < 20; run++) {
      const first = defaultNakDelayMs(1);
      expect(first).toBeGreaterThanOrEqual(800);
      expect(first).toBeLessThanOrEqual(1_200);
      const third = defaultNakDelayMs(3);
      expect(third).toBeGreaterThanOrEqual(3_200);
      expect(third).toBeLessThanOrEqual(4_800);
      expect(defaultNakDelayMs(30)).toBeLessThanOrEqual(72_000);
    }
  });
});

describe('streams naming', () => {
  it('maps a subject suffix to its entity and refuses unknown ones', () => {
    expect(entityOfSuffix('task.accepted.v1')).toBe('task');
    expect(entityOfSuffix('sandbox.run-requested.v1')).toBe('sandbox');
    expect(() => entityOfSuffix('widget.made.v1')).toThrow(/known entity/);
  });

  it('derives the stream config from the prefix', () => {
    const config = streamConfigFor('task', { prefix: 'tandem' });
    expect(config).toMatchObject({
      name: 'TANDEM_TASK',
      subjects: ['tandem.task.>'],
      storage: 'file',
      retention: 'limits',
      duplicate_window: 120_000_000_000,
    });
    expect(() => streamConfigFor('task', { prefix: 'tandem', maxAgeMs: 1_000 })).toThrow(/at least/);
    expect(() => streamConfigFor('task', { prefix: 'bad prefix' })).toThrow(/invalid subject prefix/);
  });
});
