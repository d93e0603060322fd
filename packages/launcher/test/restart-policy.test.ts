import { describe, expect, it } from 'vitest';
import { DEFAULT_RESTART_POLICY, describeExit, nextRestartDelay } from '../src/restart-policy.js';

describe('restart policy', () => {
  it('waits 0.5 s first, doubles on each quick crash, and stops at 30 s', () => {
    const delays: number[] = [];
    let previous: number | null = null;
    for (let crash = 0; crash < 9; crash += 1) {
      previous = nextRestartDelay(previous, 1_000);
      delays.push(previous);
    }
    expect(delays).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
  });

  it('starts over after a minute up', () => {
    expect(nextRestartDelay(30_000, DEFAULT_RESTART_POLICY.resetAfterMs)).toBe(500);
    expect(nextRestartDelay(30_000, DEFAULT_RESTART_POLICY.resetAfterMs - 1)).toBe(30_000);
  });

  it('names the exit code or the signal', () => {
    expect(describeExit(1, null)).toBe('code 1');
    expect(describeExit(null, 'SIGKILL')).toBe('signal SIGKILL');
  });
});
