import { describe, expect, it } from 'vitest';
import { assertStreamReplicas } from '../src/domain/stream-replicas.js';
import { replicasToKeep, streamConfigFor } from '../src/index.js';

describe('replicasToKeep', () => {
  it('creates a stream with the replicas asked for', () => {
    expect(replicasToKeep(undefined, 1)).toBe(1);
    expect(replicasToKeep(undefined, 3)).toBe(3);
  });

  it('raises replicas to the count asked for', () => {
    expect(replicasToKeep(1, 3)).toBe(3);
    expect(replicasToKeep(3, 3)).toBe(3);
  });

  it('never lowers replicas that are higher on the server', () => {
    expect(replicasToKeep(3, 1)).toBe(3);
    expect(replicasToKeep(5, 3)).toBe(5);
  });

  it('refuses a count JetStream does not allow', () => {
    for (const bad of [0, -1, 6, 1.5, Number.NaN]) expect(() => replicasToKeep(1, bad)).toThrow(RangeError);
    expect(assertStreamReplicas(5)).toBe(5);
    expect(() => streamConfigFor('task', { prefix: 'tandem', replicas: 0 })).toThrow(RangeError);
  });
});
