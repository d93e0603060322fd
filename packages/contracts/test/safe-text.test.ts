import { describe, expect, it } from 'vitest';
import { hasUnsafeText, toSafeJson, toSafeJsonText, toSafeText } from '../src/index.js';

describe('text Postgres can store', () => {
  it('replaces NUL and lone surrogates with U+FFFD and keeps pairs', () => {
    expect(toSafeText('a\u0000b')).toBe('a\uFFFDb');
    expect(toSafeText('x\ud800')).toBe('x\uFFFD');
    expect(toSafeText('\udc00y')).toBe('\uFFFDy');
    expect(toSafeText('\udc00\ud800')).toBe('\uFFFD\uFFFD');
    expect(toSafeText('ok 😀')).toBe('ok 😀');
    expect(hasUnsafeText('ok 😀')).toBe(false);
    expect(hasUnsafeText('\u0000')).toBe(true);
  });

  it('walks values, keys included, and returns an unchanged value as it was', () => {
    const clean = { a: [1, 'two', { three: null }] };
    expect(toSafeJson(clean)).toBe(clean);
    expect(toSafeJson({ 'k\u0000': ['v\ud800', 1, true, null] })).toEqual({
      'k\uFFFD': ['v\uFFFD', 1, true, null],
    });
    const proto = JSON.parse('{"__proto__": {"x": "\\u0000"}}') as unknown;
    const safe = toSafeJson(proto);
    expect(Object.getPrototypeOf(safe)).toBe(Object.prototype);
    expect(Object.keys(safe as object)).toEqual(['__proto__']);
    // The text has no \u0000 escape and no lone surrogate escape for jsonb to refuse.
    expect(toSafeJsonText({ s: 'a\u0000\ud800' })).toBe('{"s":"a\uFFFD\uFFFD"}');
  });
});
