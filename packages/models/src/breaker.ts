import type { BreakerConfig } from './selector-config.js';

/** A breaker's state: `closed` calls, `open` skips, `half-open` lets one trial call through. */
export type BreakerState = 'closed' | 'open' | 'half-open';

interface Entry {
  consecutiveFailures: number;
  /** Epoch ms until which the breaker skips; null while closed. */
  openUntil: number | null;
  /** A half-open trial call is under way: everyone else keeps skipping. */
  trialInFlight: boolean;
}

/** Circuit breakers keyed by endpoint and model, on an injectable clock; in memory, per process. */
export interface Breakers {
  state(key: string): { state: BreakerState; openUntil: number | null };
  /** Whether a call may go now; in half-open state it takes the single trial slot. */
  acquire(key: string): boolean;
  /** The endpoint answered (also for a request the endpoint rejected): closes the breaker. */
  succeeded(key: string): void;
  /** A failure that says the endpoint is unwell: counts towards opening, reopens after a failed trial. */
  failed(key: string): void;
  /** The call ended without a verdict (aborted by the caller, budget stop): frees a trial slot. */
  released(key: string): void;
}

/** Creates the breakers of one selector. */
export function createBreakers(config: BreakerConfig, now: () => number): Breakers {
  const entries = new Map<string, Entry>();
  const entry = (key: string): Entry => {
    let found = entries.get(key);
    if (found === undefined) {
      found = { consecutiveFailures: 0, openUntil: null, trialInFlight: false };
      entries.set(key, found);
    }
    return found;
  };
  const stateOf = (found: Entry): BreakerState => {
    if (found.openUntil === null) return 'closed';
    return now() < found.openUntil ? 'open' : 'half-open';
  };

  return {
    state(key) {
      const found = entry(key);
      return { state: stateOf(found), openUntil: found.openUntil };
    },
    acquire(key) {
      const found = entry(key);
      const state = stateOf(found);
      if (state === 'closed') return true;
      if (state === 'open' || found.trialInFlight) return false;
      found.trialInFlight = true;
      return true;
    },
    succeeded(key) {
      const found = entry(key);
      found.consecutiveFailures = 0;
      found.openUntil = null;
      found.trialInFlight = false;
    },
    failed(key) {
      const found = entry(key);
      found.consecutiveFailures += 1;
      found.trialInFlight = false;
      // Only a success resets the count, so a failed half-open trial is always past the threshold.
      if (found.consecutiveFailures >= config.failureThreshold) {
        found.openUntil = now() + config.cooldownMs;
      }
    },
    released(key) {
      entry(key).trialInFlight = false;
    },
  };
}
