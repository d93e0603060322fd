/**
 * When the launcher starts a service again after it exited unexpectedly: no I/O, so the schedule is
 * unit-tested. The first restart waits `initialDelayMs`; each quick crash after it doubles the wait up to
 * `maxDelayMs`; a process that stayed up `resetAfterMs` or longer starts the schedule over (a crash an
 * hour later is a new incident, not the next step of a crash loop).
 */
export interface RestartPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  resetAfterMs: number;
}

/** 0.5 s doubling to 30 s, reset after a minute up. */
export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  resetAfterMs: 60_000,
};

/** The wait before the next start, given the previous wait (null: none yet) and how long it was up. */
export function nextRestartDelay(
  previousDelayMs: number | null,
  uptimeMs: number,
  policy: RestartPolicy = DEFAULT_RESTART_POLICY,
): number {
  if (previousDelayMs === null || uptimeMs >= policy.resetAfterMs) return policy.initialDelayMs;
  return Math.min(policy.maxDelayMs, Math.max(policy.initialDelayMs, previousDelayMs * 2));
}

/** "code 1" or "signal SIGKILL": how a process ended, for the launcher's log line. */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal !== null) return `signal ${signal}`;
  return `code ${code ?? 'unknown'}`;
}
