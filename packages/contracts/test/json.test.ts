import { describe, expect, it } from 'vitest';
import {
  DEFAULT_BUS_PAYLOAD_LIMITS,
  DEFAULT_HTTP_BODY_LIMITS,
  DEFAULT_TOOL_CALL_LIMITS,
  TOOL_RESULT_MAX_DEPTH,
  isWellFormedText,
  jsonDepth,
  rawJsonDepth,
  scanJsonText,
  utf8ByteLength,
  type JsonValue,
} from '../src/index.js';

describe('rawJsonDepth', () => {
  it.each([
    '1',
    '"x"',
    '[]',
    '{}',
    '[1]',
    '{"a":1}',
    '{"a":{}}',
    '{"a":[[],[[1]]],"b":"[[[[["}',
    '[[[[[[]]]]]]',
    '{"a":"\\"[[[[\\\\","b":[{"c":[true,null,false]}]}',
    ' [ { "a" : [ 1 , 2 ] } ] ',
    '{"a\\\\":"x\\\\","b":[[1]]}',
    '["\\\\\\"]]]", [2]]',
    '{"\\u005b\\"{":[{"\\\\\\\\":["]"]}]}',
  ])('measures %s like jsonDepth of the parsed value', (text) => {
    expect(rawJsonDepth(text)).toBe(jsonDepth(JSON.parse(text)));
  });

  it('stops at the limit instead of scanning everything', () => {
    expect(rawJsonDepth('['.repeat(1_000_000), 16)).toBe(17);
    expect(jsonDepth(JSON.parse(`${'['.repeat(100)}${']'.repeat(100)}`), 16)).toBe(17);
  });
});

describe('utf8ByteLength and isWellFormedText', () => {
  it.each(['', 'abc', 'é', '€', '😀', 'a\u0000b', 'mixed é € 😀'])('counts %j like Buffer', (text) => {
    expect(utf8ByteLength(text)).toBe(Buffer.byteLength(text, 'utf8'));
    expect(isWellFormedText(text)).toBe(true);
  });

  it('counts a lone surrogate as U+FFFD and reports it as malformed', () => {
    expect(utf8ByteLength('\ud800')).toBe(3);
    expect(isWellFormedText('a\ud800')).toBe(false);
    expect(isWellFormedText('\udc00a')).toBe(false);
  });
});

/** `[[...]]` nested `depth` levels around a value (jsonDepth's measure: `depth` containers). */
function nested(depth: number, open = '[', close = ']', inner = '1'): string {
  return `${open.repeat(depth)}${inner}${close.repeat(depth)}`;
}

/** A pseudo-random JSON value with strings full of brackets, quotes and backslashes (seeded). */
function randomValue(seed: number): JsonValue {
  let state = seed;
  const next = (): number => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  const pieces = ['[', ']', '{', '}', '"', '\\', '\\"', 'é', '😀', 'a', ' ', '\n', ':', ','];
  const text = (): string =>
    Array.from({ length: Math.floor(next() * 8) }, () => pieces[Math.floor(next() * pieces.length)]).join('');
  const build = (level: number): JsonValue => {
    const kind = level > 6 ? Math.floor(next() * 4) : Math.floor(next() * 6);
    switch (kind) {
      case 0:
        return text();
      case 1:
        return Math.round(next() * 1e6) / 100;
      case 2:
        return next() < 0.5;
      case 3:
        return null;
      case 4:
        return Array.from({ length: Math.floor(next() * 4) }, () => build(level + 1));
      default:
        return Object.fromEntries(
          Array.from({ length: Math.floor(next() * 4) }, () => [text(), build(level + 1)]),
        );
    }
  };
  return build(0);
}

describe('scanJsonText', () => {
  const limits = { maxBytes: 1024 * 1024, maxDepth: 64 };

  it('accepts text at the depth limit and refuses one level more, with where it stopped', () => {
    expect(scanJsonText(nested(64), limits)).toEqual({ ok: true, depth: 64 });
    expect(scanJsonText(nested(65, '{"a":', '}'), limits)).toEqual({
      ok: false,
      problem: 'too_deep',
      limit: 64,
      // The 65th `{` opens at 64 * 5; its first key, one character on, is the first value 65 deep.
      offset: 64 * 5 + 1,
    });
  });

  it('refuses a 10,000-deep object without parsing it', () => {
    const text = nested(10_000, '{"k":', '}');
    expect(() => JSON.stringify(JSON.parse(text))).toThrow(RangeError);
    expect(scanJsonText(text, limits)).toMatchObject({ ok: false, problem: 'too_deep', limit: 64 });
  });

  it('stops a 1,000,000-deep array at the limit instead of walking it', () => {
    const text = nested(1_000_000);
    const started = performance.now();
    const scan = scanJsonText(text, { maxBytes: 4 * 1024 * 1024, maxDepth: 64 });
    const elapsedMs = performance.now() - started;
    expect(scan).toEqual({ ok: false, problem: 'too_deep', limit: 64, offset: 65 });
    // The scan reads 66 characters of 2 million; even a slow machine does that in well under 50 ms.
    expect(elapsedMs).toBeLessThan(50);
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    const brackets = JSON.stringify({ a: '['.repeat(10_000), b: ['{'.repeat(500)], c: '\\"]]]' });
    expect(scanJsonText(brackets, limits)).toEqual({ ok: true, depth: 2 });
    // A string that ends in an escaped backslash closes at its quote: the brackets after it count.
    expect(scanJsonText(`["\\\\",${nested(70)}]`, limits)).toMatchObject({ ok: false, problem: 'too_deep' });
    // An escaped quote does not close the string: the brackets inside it don't count.
    expect(scanJsonText(`["\\"${'['.repeat(100)}"]`, limits)).toEqual({ ok: true, depth: 1 });
  });

  it('measures like jsonDepth on random JSON full of brackets, quotes and escapes', () => {
    for (let seed = 1; seed <= 300; seed += 1) {
      const value = randomValue(seed);
      const text = JSON.stringify(value, null, seed % 2 === 0 ? 2 : undefined);
      expect(scanJsonText(text, limits)).toEqual({ ok: true, depth: jsonDepth(value) });
    }
  });

  it('refuses text over the byte limit, counting UTF-8 bytes rather than characters', () => {
    const small = { maxBytes: 100, maxDepth: 64 };
    expect(scanJsonText(JSON.stringify('x'.repeat(98)), small)).toEqual({ ok: true, depth: 0 });
    expect(scanJsonText(JSON.stringify('x'.repeat(99)), small)).toEqual({
      ok: false,
      problem: 'too_large',
      limit: 100,
    });
    // 50 characters, 101 bytes.
    const accented = JSON.stringify('é'.repeat(48)) + ' ';
    expect(accented.length).toBe(51);
    expect(Buffer.byteLength(accented)).toBe(99);
    expect(scanJsonText(accented, small)).toEqual({ ok: true, depth: 0 });
    expect(scanJsonText(JSON.stringify('é'.repeat(50)), small)).toMatchObject({ problem: 'too_large' });
  });

  it('leaves malformed text within the limits to JSON.parse', () => {
    expect(scanJsonText('{"truncated": ', limits)).toEqual({ ok: true, depth: 1 });
    expect(scanJsonText('"unterminated [[[[', limits)).toEqual({ ok: true, depth: 0 });
    expect(scanJsonText(']]]]', limits)).toEqual({ ok: true, depth: 0 });
  });

  it('keeps the nesting budget: what HTTP and tools let in fits through the bus inside an envelope', () => {
    expect(DEFAULT_BUS_PAYLOAD_LIMITS).toEqual({ maxBytes: 8 * 1024 * 1024, maxDepth: 64 });
    // An HTTP body travels inside an event: the bus takes more bytes than HTTP lets in.
    expect(DEFAULT_HTTP_BODY_LIMITS.maxBytes).toBeLessThan(DEFAULT_BUS_PAYLOAD_LIMITS.maxBytes);
    expect(DEFAULT_HTTP_BODY_LIMITS).toEqual({ maxBytes: 1024 * 1024, maxDepth: 32 });
    // A body's value sits 2 levels deeper in an event, a tool result at most 5.
    expect(DEFAULT_HTTP_BODY_LIMITS.maxDepth + 2).toBeLessThan(DEFAULT_BUS_PAYLOAD_LIMITS.maxDepth);
    expect(TOOL_RESULT_MAX_DEPTH + 5).toBeLessThan(DEFAULT_BUS_PAYLOAD_LIMITS.maxDepth);
    expect(DEFAULT_TOOL_CALL_LIMITS.maxDepth).toBeLessThan(DEFAULT_HTTP_BODY_LIMITS.maxDepth);
  });
});
