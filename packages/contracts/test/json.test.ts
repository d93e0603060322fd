import { describe, expect, it } from 'vitest';
import { isWellFormedText, jsonDepth, rawJsonDepth, utf8ByteLength } from '../src/index.js';

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
