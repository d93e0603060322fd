import { z } from 'zod';

/** Any JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Any JSON value (zod 4's recursive JSON schema). */
export const JsonValue: z.ZodType<JsonValue> = z.json();

/**
 * The nesting depth of a JSON value (a scalar is 0, `[1]` and `{}` inside nothing are 1 and 0: the depth
 * is the number of containers around the deepest value). Iterative so hostile input can't blow the stack.
 * With `stopAbove`, the walk ends as soon as the depth exceeds it (and returns that depth), so a cyclic
 * or absurdly deep value costs no more than the limit.
 */
export function jsonDepth(value: unknown, stopAbove: number = Number.POSITIVE_INFINITY): number {
  let max = 0;
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const current = stack.pop();
    if (!current) break;
    if (current.depth > max) max = current.depth;
    if (max > stopAbove) return max;
    if (current.value !== null && typeof current.value === 'object') {
      const children = Array.isArray(current.value) ? current.value : Object.values(current.value);
      for (const child of children) {
        if (child !== null && typeof child === 'object')
          stack.push({ value: child, depth: current.depth + 1 });
        else if (current.depth + 1 > max) max = current.depth + 1;
      }
    }
  }
  return max;
}

/** Limits checked on JSON text before it is parsed: its size in UTF-8 bytes and its nesting depth. */
export interface JsonTextLimits {
  /** Largest accepted text, in UTF-8 bytes. */
  maxBytes: number;
  /** Deepest accepted nesting, in {@link jsonDepth}'s measure (containers around the deepest value). */
  maxDepth: number;
}

/*
 * The nesting budget. What enters over HTTP or comes back from a tool is later carried inside event
 * envelopes, so every such value must fit through the bus with its envelope around it:
 *   - tool-call arguments: at most 16 levels (DEFAULT_TOOL_CALL_LIMITS);
 *   - an HTTP body: at most 32; its deepest part (a task's `input`) sits 2 levels deeper in an event
 *     (`envelope.data.input`): at most 33;
 *   - a tool result value (a sandbox result, an HTTP response's JSON): at most 32; it sits at most 5
 *     levels deeper (`envelope.data.completedSteps[].value.json`): at most 37;
 *   - a bus payload: at most 64, above all of those with room to spare, and far below what recursive
 *     validators survive (zod's JSON schema overflows the stack between 1,000 and 2,000 levels on Node 20).
 */

/** Default limits of an HTTP JSON body: 1 MiB and 32 levels (see the nesting budget above). */
export const DEFAULT_HTTP_BODY_LIMITS: Readonly<JsonTextLimits> = { maxBytes: 1024 * 1024, maxDepth: 32 };

/**
 * Default limits of a bus payload: 8 MiB and 64 levels. 8 MiB is the `max_payload` of the deployed
 * nats-server (infra/nats/nats.conf), which a sandbox result with a 4 MiB value and its output needs; a
 * server with a smaller `max_payload` refuses larger messages at publish anyway.
 */
export const DEFAULT_BUS_PAYLOAD_LIMITS: Readonly<JsonTextLimits> = {
  maxBytes: 8 * 1024 * 1024,
  maxDepth: 64,
};

/** Deepest tool result value kept (a sandbox program's result, the JSON of an HTTP response). */
export const TOOL_RESULT_MAX_DEPTH = 32;

/** What {@link scanJsonText} found: within the limits (with the depth), too large, or too deep. */
export type JsonTextScan =
  | { ok: true; depth: number }
  | { ok: false; problem: 'too_large'; limit: number }
  | { ok: false; problem: 'too_deep'; limit: number; offset: number };

/**
 * The one pass over raw JSON characters: the nesting depth of `{`/`[` outside strings (escapes honoured),
 * stopping at the first character that takes it above `stopAbove`. Never builds objects and never
 * recurses; string contents are skipped with `indexOf`. Returns the depth and where the scan stopped.
 */
function measureDepth(text: string, stopAbove: number): { depth: number; offset: number } {
  let open = 0;
  let max = 0;
  const length = text.length;
  for (let index = 0; index < length; index += 1) {
    const char = text.charCodeAt(index);
    switch (char) {
      case 0x5b /* [ */:
      case 0x7b /* { */:
        // The container is itself a value at the current depth; its contents are one deeper.
        if (open > max) max = open;
        open += 1;
        break;
      case 0x5d /* ] */:
      case 0x7d /* } */:
        if (open > 0) open -= 1;
        break;
      case 0x22 /* " */: {
        if (open > max) max = open;
        if (max > stopAbove) return { depth: max, offset: index };
        // Jump to the closing quote: the first one not preceded by an odd run of backslashes.
        let close = text.indexOf('"', index + 1);
        while (close !== -1) {
          let backslashes = 0;
          while (text.charCodeAt(close - 1 - backslashes) === 0x5c /* \ */) backslashes += 1;
          if (backslashes % 2 === 0) break;
          close = text.indexOf('"', close + 1);
        }
        // An unterminated string: nothing after it can nest (JSON.parse rejects the text afterwards).
        index = close === -1 ? length : close;
        break;
      }
      case 0x20:
      case 0x09:
      case 0x0a:
      case 0x0d:
      case 0x2c /* , */:
      case 0x3a /* : */:
        break;
      default:
        // The first character of a number, true, false or null.
        if (open > max) max = open;
    }
    if (max > stopAbove) return { depth: max, offset: index };
  }
  return { depth: max, offset: length };
}

/**
 * The nesting depth of JSON text, measured on the raw characters without parsing (same measure as
 * {@link jsonDepth} for valid JSON). One pass, constant memory; brackets inside strings don't count.
 * Stops as soon as the depth exceeds `stopAbove`, so 10,000 nested brackets cost a few characters of
 * work. Malformed text gets a best-effort figure; JSON.parse rejects it afterwards.
 */
export function rawJsonDepth(text: string, stopAbove: number = Number.POSITIVE_INFINITY): number {
  return measureDepth(text, stopAbove).depth;
}

/**
 * Checks JSON text against size and depth limits before anything parses it into objects (the depth
 * scan is {@link rawJsonDepth}'s). Size first: more UTF-16 units than `maxBytes` is too large without
 * counting, and the UTF-8 length is counted only when the text could be near the limit. Cost is linear
 * in the text and bounded by the limits: too-deep input stops at the first bracket over the limit.
 * Malformed JSON within the limits is `ok`; JSON.parse is still the judge of syntax.
 */
export function scanJsonText(text: string, limits: JsonTextLimits): JsonTextScan {
  // Every UTF-16 unit is at least one UTF-8 byte and at most three. Buffer.byteLength is native (about
  // six times faster than utf8ByteLength here) and counts a lone surrogate as 3 bytes the same way.
  if (
    text.length > limits.maxBytes ||
    (text.length * 3 > limits.maxBytes && Buffer.byteLength(text, 'utf8') > limits.maxBytes)
  )
    return { ok: false, problem: 'too_large', limit: limits.maxBytes };
  const { depth, offset } = measureDepth(text, limits.maxDepth);
  if (depth > limits.maxDepth) return { ok: false, problem: 'too_deep', limit: limits.maxDepth, offset };
  return { ok: true, depth };
}

/** The UTF-8 length of a string without allocating it; a lone surrogate counts as the 3 bytes of U+FFFD. */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && index + 1 < text.length) {
      const next = text.charCodeAt(index + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        index += 1;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** Whether a string is well-formed UTF-16 (no lone surrogates), i.e. representable as UTF-8 text. */
export function isWellFormedText(text: string): boolean {
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = text.charCodeAt(index + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      index += 1;
    } else if (code >= 0xdc00 && code <= 0xdfff) return false;
  }
  return true;
}
