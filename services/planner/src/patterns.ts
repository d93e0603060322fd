import { LearningPatternsQuery, LearningPatternsReply, querySubjectFor } from '@tandem/contracts';
import type { Log } from '@tandem/service-kit';

/** Sends a core NATS request; resolves with the reply's bytes or rejects on timeout / no responders. */
export type Requester = (subject: string, payload: Uint8Array, timeoutMs: number) => Promise<Uint8Array>;

/** Recent non-empty answers of the learning service, by query. */
export interface PatternCache {
  get(key: string): LearningPatternsReply['patterns'] | undefined;
  set(key: string, patterns: LearningPatternsReply['patterns']): void;
}

/**
 * Keeps non-empty answers for `ttlMs`: patterns change slowly, and a busy planner then asks learning once
 * per kind per interval instead of once per task. Empty answers are not kept, so the first pattern learned
 * for a kind is used by the very next plan.
 */
export function createPatternCache(ttlMs: number, now: () => number = Date.now): PatternCache {
  const entries = new Map<string, { at: number; patterns: LearningPatternsReply['patterns'] }>();
  return {
    get(key) {
      const entry = entries.get(key);
      if (!entry) return undefined;
      if (now() - entry.at > ttlMs) {
        entries.delete(key);
        return undefined;
      }
      return entry.patterns;
    },
    set(key, patterns) {
      if (ttlMs <= 0 || patterns.length === 0) return;
      // Bounded: kinds are caller-chosen strings.
      if (entries.size >= 1000) entries.clear();
      entries.set(key, { at: now(), patterns });
    },
  };
}

/**
 * Asks the learning service which patterns apply, waiting at most `timeoutMs`: planning never blocks on
 * learning, and a missing, slow or malformed answer means planning without patterns.
 */
export async function fetchPatterns(
  deps: { request: Requester; prefix: string; timeoutMs: number; log: Log; cache?: PatternCache },
  query: LearningPatternsQuery,
): Promise<{ patterns: LearningPatternsReply['patterns']; outcome: 'ok' | 'unavailable' | 'invalid' }> {
  let text: string;
  try {
    text = JSON.stringify(LearningPatternsQuery.parse(query));
  } catch (error) {
    deps.log.debug({ err: error }, 'invalid pattern query; planning without patterns');
    return { patterns: [], outcome: 'unavailable' };
  }
  const cached = deps.cache?.get(text);
  if (cached) return { patterns: cached, outcome: 'ok' };
  try {
    const payload = new TextEncoder().encode(text);
    const reply = await deps.request(
      querySubjectFor(deps.prefix, 'learning-patterns'),
      payload,
      deps.timeoutMs,
    );
    const parsed = LearningPatternsReply.safeParse(JSON.parse(new TextDecoder().decode(reply)));
    if (!parsed.success) {
      deps.log.warn(
        { issues: parsed.error.issues.length },
        'learning answered with an invalid pattern list; planning without patterns',
      );
      return { patterns: [], outcome: 'invalid' };
    }
    deps.cache?.set(text, parsed.data.patterns);
    return { patterns: parsed.data.patterns, outcome: 'ok' };
  } catch (error) {
    deps.log.debug({ err: error }, 'no learned patterns in time; planning without them');
    return { patterns: [], outcome: 'unavailable' };
  }
}
