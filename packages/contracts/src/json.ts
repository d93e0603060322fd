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

/**
 * The nesting depth of JSON text, measured on the raw characters without parsing (same measure as
 * {@link jsonDepth} for valid JSON). One pass, constant memory; brackets inside strings don't count.
 * Stops as soon as the depth exceeds `stopAbove`, so 10,000 nested brackets cost a few characters of
 * work. Malformed text gets a best-effort figure; JSON.parse rejects it afterwards.
 */
export function rawJsonDepth(text: string, stopAbove: number = Number.POSITIVE_INFINITY): number {
  let open = 0;
  let max = 0;
  let inString = false;
  for (let index = 0; index < text.length; index += 1) {
    const char = text.charCodeAt(index);
    if (inString) {
      if (char === 0x5c /* \ */) index += 1;
      else if (char === 0x22 /* " */) inString = false;
      continue;
    }
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
      case 0x22 /* " */:
        inString = true;
        if (open > max) max = open;
        break;
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
    if (max > stopAbove) return max;
  }
  return max;
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
