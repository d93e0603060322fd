import { describe, expect, it } from 'vitest';
import { toJsonInput } from '../src/index.js';

describe('toJsonInput', () => {
  it('passes JSON through unchanged', () => {
    const value = {
      code: 'STEP.FAILED',
      message: 'x',
      retryable: false,
      details: { issues: [{ path: ['a', 0], message: 'bad' }], count: 2, ratio: 0.5, none: null },
    };
    expect(toJsonInput(value)).toEqual(value);
    expect(toJsonInput([1, 'two', true, null])).toEqual([1, 'two', true, null]);
    expect(toJsonInput('text')).toBe('text');
    expect(toJsonInput(42)).toBe(42);
  });

  it('stores null and undefined as an empty object', () => {
    expect(toJsonInput(null)).toEqual({});
    expect(toJsonInput(undefined)).toEqual({});
  });

  it('drops what JSON cannot hold: functions, undefined properties and symbols', () => {
    expect(toJsonInput({ keep: 1, run: () => 1, gone: undefined, tag: Symbol('s') })).toEqual({ keep: 1 });
    expect(toJsonInput([() => 1, undefined])).toEqual([null, null]);
  });

  it('converts values with a JSON form: dates to strings, non-finite numbers to null', () => {
    expect(
      toJsonInput({
        at: new Date('2025-01-02T03:04:05.000Z'),
        nan: Number.NaN,
        inf: Number.POSITIVE_INFINITY,
      }),
    ).toEqual({
      at: '2025-01-02T03:04:05.000Z',
      nan: null,
      inf: null,
    });
  });

  it('rejects a BigInt', () => {
    expect(() => toJsonInput({ big: 10n })).toThrow(TypeError);
  });

  it('rejects a value with no JSON form at all', () => {
    expect(() => toJsonInput(() => 1)).toThrow();
    expect(() => toJsonInput(Symbol('s'))).toThrow();
  });

  it('rejects a cycle', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    expect(() => toJsonInput(cyclic)).toThrow(TypeError);
  });

  it('returns a copy, not the caller object', () => {
    const original = { nested: { n: 1 } };
    const stored = toJsonInput(original);
    original.nested.n = 2;
    expect(stored).toEqual({ nested: { n: 1 } });
  });
});
