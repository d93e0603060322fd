import { TOOL_RESULT_MAX_DEPTH } from '@tandem/contracts';
import { describe, expect, it } from 'vitest';
import { parseGuestReport } from '../src/sandbox/guest-report.js';
import { READY_MARKER } from '../src/sandbox/guest-wrappers.js';

/** The result channel as a guest that reported `text` leaves it. */
function channel(text: string): Buffer {
  return Buffer.from(`${READY_MARKER}${text}`, 'utf8');
}

/** An ok report whose value is `depth` nested arrays around a number. */
function okReport(depth: number): string {
  return `{"status":"ok","value":${'['.repeat(depth)}1${']'.repeat(depth)}}`;
}

describe('parseGuestReport', () => {
  it('keeps a result nested up to the tool-result depth limit', () => {
    const report = parseGuestReport(channel(okReport(TOOL_RESULT_MAX_DEPTH)));
    expect(report.kind).toBe('ok');
  });

  it('refuses a result nested deeper than the bus can carry inside an event, before parsing it', () => {
    // The value travels in sandbox.run-completed and then step events: deeper than the limit would be
    // dead-lettered there (or overflow a validator's stack at 10,000) instead of failing the step here.
    for (const depth of [TOOL_RESULT_MAX_DEPTH + 1, 10_000, 1_000_000]) {
      expect(parseGuestReport(channel(okReport(depth))), `depth ${depth}`).toEqual({
        kind: 'invalid',
        reason: `the program's result nests more than ${TOOL_RESULT_MAX_DEPTH} levels deep`,
      });
    }
  });

  it('does not count brackets inside the result strings', () => {
    const report = parseGuestReport(channel(JSON.stringify({ status: 'ok', value: '['.repeat(1_000) })));
    expect(report).toEqual({ kind: 'ok', value: '['.repeat(1_000) });
  });
});
