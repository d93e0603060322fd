import { TOOL_RESULT_MAX_DEPTH, rawJsonDepth } from '@tandem/contracts';
import { READY_MARKER } from './guest-wrappers.js';

/** What the wrapper inside the box reported on the result channel (see guest-wrappers.ts). */
export type GuestReport =
  | { kind: 'not-started' }
  | { kind: 'none' }
  | { kind: 'invalid'; reason: string }
  | { kind: 'ok'; value: unknown }
  | { kind: 'error'; errorKind: 'exception' | 'result' | 'memory' | 'timeout'; message: string };

/** `timeout`: the JavaScript engine's own deadline stopped the program (the supervisor's kill is the backstop). */
const ERROR_KINDS = ['exception', 'result', 'memory', 'timeout'] as const;

function isErrorKind(value: unknown): value is (typeof ERROR_KINDS)[number] {
  return ERROR_KINDS.some((kind) => kind === value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses the bytes the box wrote to the result channel. Everything after the ready marker is written or
 * can be overwritten by guest code, so it is parsed as untrusted JSON and checked field by field.
 */
export function parseGuestReport(channel: Buffer): GuestReport {
  const marker = Buffer.from(READY_MARKER, 'utf8');
  if (channel.length < marker.length || !channel.subarray(0, marker.length).equals(marker)) {
    return { kind: 'not-started' };
  }
  const text = channel.subarray(marker.length).toString('utf8');
  if (text.trim() === '') return { kind: 'none' };

  // The report is `{"status":"ok","value":...}`: one level around the value. The depth is measured on
  // the raw text, so a million-deep result costs a few characters of work and is never parsed; deeper
  // than a tool result may be, it could not travel in the events that carry it.
  if (rawJsonDepth(text, TOOL_RESULT_MAX_DEPTH + 1) > TOOL_RESULT_MAX_DEPTH + 1) {
    return {
      kind: 'invalid',
      reason: `the program's result nests more than ${TOOL_RESULT_MAX_DEPTH} levels deep`,
    };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { kind: 'invalid', reason: `the result channel held invalid JSON (${reason})` };
  }
  if (!isRecord(parsed))
    return { kind: 'invalid', reason: 'the result channel held JSON that is not a report object' };

  if (parsed.status === 'ok' && 'value' in parsed) return { kind: 'ok', value: parsed.value };
  if (parsed.status === 'error' && isErrorKind(parsed.kind) && typeof parsed.message === 'string') {
    return { kind: 'error', errorKind: parsed.kind, message: parsed.message };
  }
  return { kind: 'invalid', reason: 'the result channel held a report of an unknown shape' };
}
