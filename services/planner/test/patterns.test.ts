import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, type Log } from '@tandem/service-kit';
import { createPatternCache, fetchPatterns, type Requester } from '../src/patterns.js';

const PATTERN = {
  id: '5e0c9a4e-8f2b-4c11-9d3a-6b7e8f901234',
  type: 'strategy',
  scope: 'kind:math',
  content: 'Plans shaped run_code -> respond succeeded 3 of 3 times.',
  successCount: 3,
  failureCount: 0,
  confidence: 0.8,
} as const;

interface Sent {
  subject: string;
  payload: unknown;
  timeoutMs: number;
}

function memoryLog(): { log: Log; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  const log = createLogger({ service: 'planner-test', level: 'debug', destination });
  const lines = (): Array<Record<string, unknown>> =>
    chunks
      .join('')
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line): Record<string, unknown> => {
        const parsed: unknown = JSON.parse(line);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
          throw new Error(`not a log object: ${line}`);
        return Object.fromEntries(Object.entries(parsed));
      });
  return { log, lines };
}

function replying(reply: string | (() => Promise<Uint8Array>), sent: Sent[] = []): Requester {
  return async (subject, payload, timeoutMs) => {
    sent.push({ subject, payload: JSON.parse(new TextDecoder().decode(payload)), timeoutMs });
    if (typeof reply === 'function') return reply();
    return new TextEncoder().encode(reply);
  };
}

describe('fetchPatterns', () => {
  it('sends the query on <prefix>.query.learning-patterns with the timeout and parses an ok reply', async () => {
    const sent: Sent[] = [];
    const { log } = memoryLog();
    const result = await fetchPatterns(
      {
        request: replying(JSON.stringify({ patterns: [PATTERN] }), sent),
        prefix: 'test_ab12.dev',
        timeoutMs: 250,
        log,
      },
      { kind: 'math', agentId: null, limit: 3 },
    );
    expect(result).toEqual({ outcome: 'ok', patterns: [PATTERN] });
    expect(sent).toEqual([
      {
        subject: 'test_ab12.dev.query.learning-patterns',
        payload: { kind: 'math', agentId: null, limit: 3 },
        timeoutMs: 250,
      },
    ]);
  });

  it('fills the default limit into the query it sends', async () => {
    const sent: Sent[] = [];
    const { log } = memoryLog();
    await fetchPatterns(
      { request: replying('{"patterns":[]}', sent), prefix: 'tandem', timeoutMs: 100, log },
      { kind: 'general', limit: 5 },
    );
    expect(sent[0]?.payload).toEqual({ kind: 'general', limit: 5 });
    expect(sent[0]?.subject).toBe('tandem.query.learning-patterns');
  });

  it('plans without patterns when the request times out', async () => {
    const { log, lines } = memoryLog();
    const timeout = replying(() => Promise.reject(new Error('TIMEOUT')));
    const result = await fetchPatterns(
      { request: timeout, prefix: 'tandem', timeoutMs: 10, log },
      { kind: 'math', limit: 5 },
    );
    expect(result).toEqual({ patterns: [], outcome: 'unavailable' });
    expect(lines().some((line) => line['msg'] === 'no learned patterns in time; planning without them')).toBe(
      true,
    );
  });

  it('plans without patterns when the requester throws synchronously', async () => {
    const { log } = memoryLog();
    const throwing: Requester = () => {
      throw new Error('no responders');
    };
    const result = await fetchPatterns(
      { request: throwing, prefix: 'tandem', timeoutMs: 10, log },
      { kind: 'math', limit: 5 },
    );
    expect(result).toEqual({ patterns: [], outcome: 'unavailable' });
  });

  it('plans without patterns when the reply is not JSON', async () => {
    const { log } = memoryLog();
    const result = await fetchPatterns(
      { request: replying('<html>oops'), prefix: 'tandem', timeoutMs: 10, log },
      { kind: 'math', limit: 5 },
    );
    expect(result.patterns).toEqual([]);
    expect(result.outcome).not.toBe('ok');
  });

  it.each([
    ['a missing patterns list', { items: [] }],
    ['a pattern id that is not a uuid', { patterns: [{ ...PATTERN, id: 'p-1' }] }],
    ['an unknown pattern type', { patterns: [{ ...PATTERN, type: 'vibes' }] }],
    ['a fractional count', { patterns: [{ ...PATTERN, successCount: 1.5 }] }],
    ['a bare array', [PATTERN]],
  ])('reports %s as invalid and plans without patterns', async (_label, reply) => {
    const { log, lines } = memoryLog();
    const result = await fetchPatterns(
      { request: replying(JSON.stringify(reply)), prefix: 'tandem', timeoutMs: 10, log },
      { kind: 'math', limit: 5 },
    );
    expect(result).toEqual({ patterns: [], outcome: 'invalid' });
    expect(lines().some((line) => line['level'] === 40)).toBe(true);
  });

  it('does not send an invalid query at all', async () => {
    const sent: Sent[] = [];
    const { log } = memoryLog();
    const result = await fetchPatterns(
      { request: replying('{"patterns":[]}', sent), prefix: 'tandem', timeoutMs: 10, log },
      { kind: 'math', limit: 500 },
    );
    expect(result).toEqual({ patterns: [], outcome: 'unavailable' });
    expect(sent).toEqual([]);
  });
});

describe('the pattern cache', () => {
  function counting(reply: unknown): { requester: Requester; calls: () => number } {
    let calls = 0;
    return {
      requester: async () => {
        calls += 1;
        return new TextEncoder().encode(JSON.stringify(reply));
      },
      calls: () => calls,
    };
  }

  it('reuses a non-empty answer within its time and asks again after it', async () => {
    let clock = 1000;
    const cache = createPatternCache(500, () => clock);
    const learning = counting({ patterns: [PATTERN] });
    const deps = {
      request: learning.requester,
      prefix: 'tandem',
      timeoutMs: 50,
      log: memoryLog().log,
      cache,
    };
    const first = await fetchPatterns(deps, { kind: 'math', limit: 5 });
    const second = await fetchPatterns(deps, { kind: 'math', limit: 5 });
    expect(first.patterns).toHaveLength(1);
    expect(second.patterns).toEqual(first.patterns);
    expect(learning.calls()).toBe(1);
    await fetchPatterns(deps, { kind: 'other', limit: 5 });
    expect(learning.calls()).toBe(2);
    clock += 501;
    await fetchPatterns(deps, { kind: 'math', limit: 5 });
    expect(learning.calls()).toBe(3);
  });

  it('never keeps an empty answer, so the first learned pattern is used by the next plan', async () => {
    const cache = createPatternCache(60_000);
    const learning = counting({ patterns: [] });
    const deps = {
      request: learning.requester,
      prefix: 'tandem',
      timeoutMs: 50,
      log: memoryLog().log,
      cache,
    };
    await fetchPatterns(deps, { kind: 'math', limit: 5 });
    await fetchPatterns(deps, { kind: 'math', limit: 5 });
    expect(learning.calls()).toBe(2);
  });
});
