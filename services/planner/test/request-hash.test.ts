import { describe, expect, it } from 'vitest';
import { canonicalJson } from '@tandem/contracts';
import { requestHash } from '../src/domain/request-hash.js';

describe('requestHash', () => {
  it('is a sha256 hex digest', () => {
    expect(requestHash({ goal: 'Say hi' })).toMatch(/^[0-9a-f]{64}$/);
  });

  it('does not depend on key order, at any depth', () => {
    const a = requestHash({
      goal: 'Sum',
      kind: 'math',
      input: { numbers: [1, 2], options: { round: true, base: 10 } },
      agentId: 'agent-1',
    });
    const b = requestHash({
      agentId: 'agent-1',
      input: { options: { base: 10, round: true }, numbers: [1, 2] },
      kind: 'math',
      goal: 'Sum',
    });
    expect(a).toBe(b);
  });

  it('applies the defaults: no kind is kind "general", no input is input null', () => {
    expect(requestHash({ goal: 'Say hi' })).toBe(requestHash({ goal: 'Say hi', kind: 'general' }));
    expect(requestHash({ goal: 'Say hi' })).toBe(requestHash({ goal: 'Say hi', input: null }));
    expect(requestHash({ goal: 'Say hi', agentId: undefined })).toBe(requestHash({ goal: 'Say hi' }));
  });

  it('differs when any field of the data differs', () => {
    const base = requestHash({ goal: 'Sum', kind: 'math', input: { numbers: [1, 2] } });
    const variants = [
      requestHash({ goal: 'Sum!', kind: 'math', input: { numbers: [1, 2] } }),
      requestHash({ goal: 'Sum', kind: 'general', input: { numbers: [1, 2] } }),
      requestHash({ goal: 'Sum', kind: 'math', input: { numbers: [2, 1] } }),
      requestHash({ goal: 'Sum', kind: 'math', input: { numbers: [1, 2, 3] } }),
      requestHash({ goal: 'Sum', kind: 'math', input: { numbers: '1,2' } }),
      requestHash({ goal: 'Sum', kind: 'math' }),
      requestHash({ goal: 'Sum', kind: 'math', input: { numbers: [1, 2] }, agentId: 'agent-1' }),
    ];
    for (const variant of variants) expect(variant).not.toBe(base);
    expect(new Set(variants).size).toBe(variants.length);
  });

  it('does not confuse a string with the same JSON text as a value', () => {
    expect(requestHash({ goal: 'x', input: '1' })).not.toBe(requestHash({ goal: 'x', input: 1 }));
    expect(requestHash({ goal: 'x', input: 'null' })).not.toBe(requestHash({ goal: 'x', input: null }));
  });
});

describe('canonicalJson', () => {
  it('sorts object keys, keeps array order and drops undefined properties', () => {
    expect(canonicalJson({ b: 1, a: [3, { d: undefined, c: null }], e: undefined })).toBe(
      '{"a":[3,{"c":null}],"b":1}',
    );
  });

  it('escapes keys and strings like JSON', () => {
    const text = canonicalJson({ 'a"b': 'line\nbreak' });
    expect(JSON.parse(text)).toEqual({ 'a"b': 'line\nbreak' });
  });
});
