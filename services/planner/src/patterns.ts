import { LearningPatternsQuery, LearningPatternsReply, querySubjectFor } from '@tandem/contracts';
import type { Log } from '@tandem/service-kit';

/** Sends a core NATS request; resolves with the reply's bytes or rejects on timeout / no responders. */
export type Requester = (subject: string, payload: Uint8Array, timeoutMs: number) => Promise<Uint8Array>;

/**
 * Asks the learning service which patterns apply, waiting at most `timeoutMs`: planning never blocks on
 * learning, and a missing, slow or malformed answer means planning without patterns.
 */
export async function fetchPatterns(
  deps: { request: Requester; prefix: string; timeoutMs: number; log: Log },
  query: LearningPatternsQuery,
): Promise<{ patterns: LearningPatternsReply['patterns']; outcome: 'ok' | 'unavailable' | 'invalid' }> {
  try {
    const payload = new TextEncoder().encode(JSON.stringify(LearningPatternsQuery.parse(query)));
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
    return { patterns: parsed.data.patterns, outcome: 'ok' };
  } catch (error) {
    deps.log.debug({ err: error }, 'no learned patterns in time; planning without them');
    return { patterns: [], outcome: 'unavailable' };
  }
}
