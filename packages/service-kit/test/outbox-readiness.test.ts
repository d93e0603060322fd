import { describe, expect, it } from 'vitest';
import { outboxReadiness } from '../src/index.js';

describe('outboxReadiness', () => {
  it('is ready while nothing waits or the oldest row is younger than the limit, not ready past it', async () => {
    const check = (age: number | null | Error) =>
      outboxReadiness(
        {
          oldestUnpublishedAgeMs: async () => {
            if (age instanceof Error) throw age;
            return age;
          },
        },
        30_000,
      )();
    expect(await check(null)).toEqual({ name: 'outbox', ok: true });
    expect(await check(29_000)).toEqual({ name: 'outbox', ok: true });
    const stale = await check(95_000);
    expect(stale.ok).toBe(false);
    expect(stale.detail).toMatch(/waited 95 s \(limit 30 s\): the relay is not draining/);
    expect(await check(new Error('connection refused'))).toEqual({
      name: 'outbox',
      ok: false,
      detail: 'connection refused',
    });
  });
});
