/*
 * Text Postgres can store (issue 12). Postgres text and jsonb refuse the NUL character (and jsonb the
 * `\u0000` escape and lone surrogate escapes); a NUL in a program's output or a task's goal must not make
 * a write fail, and so wedge the message that carried it. Every such character becomes U+FFFD, the
 * replacement character, as a UTF-8 decoder does with bytes it cannot read.
 */

// Without the `u` flag the pattern works on UTF-16 code units: NUL, a high surrogate not followed by a
// low one, a low surrogate not preceded by a high one. Matching NUL is the point here.
// eslint-disable-next-line no-control-regex
const UNSAFE_TEST = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
// eslint-disable-next-line no-control-regex
const UNSAFE_ALL = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** The text with NUL characters and lone surrogates replaced by U+FFFD (the same string when it had none). */
export function toSafeText(text: string): string {
  return UNSAFE_TEST.test(text) ? text.replace(UNSAFE_ALL, '\uFFFD') : text;
}

/** Whether a string holds a NUL or a lone surrogate (what {@link toSafeText} replaces). */
export function hasUnsafeText(text: string): boolean {
  return UNSAFE_TEST.test(text);
}

/**
 * A JSON-like value with {@link toSafeText} applied to every string and every object key. Returns the
 * same value (no copy) when nothing needed replacing; a changed object is rebuilt with own properties
 * only (`Object.fromEntries`, so a `__proto__` key stays a key). Other values (numbers, booleans, null,
 * and anything that is not a plain array or object) are returned as they are.
 */
export function toSafeJson(value: unknown): unknown {
  if (typeof value === 'string') return toSafeText(value);
  if (Array.isArray(value)) {
    let changed = false;
    const items = value.map((item: unknown) => {
      const safe = toSafeJson(item);
      if (safe !== item) changed = true;
      return safe;
    });
    return changed ? items : value;
  }
  if (value !== null && typeof value === 'object' && isPlainObject(value)) {
    let changed = false;
    const entries = Object.entries(value).map(([key, item]): [string, unknown] => {
      const safeKey = toSafeText(key);
      const safe = toSafeJson(item);
      if (safeKey !== key || safe !== item) changed = true;
      return [safeKey, safe];
    });
    return changed ? Object.fromEntries(entries) : value;
  }
  return value;
}

function isPlainObject(value: object): boolean {
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** `JSON.stringify` of {@link toSafeJson}: JSON text that Postgres jsonb accepts. */
export function toSafeJsonText(value: unknown): string {
  return JSON.stringify(toSafeJson(value ?? null));
}
