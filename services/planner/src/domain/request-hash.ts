import { createHash } from 'node:crypto';
import { canonicalJson, type TaskRequestedData } from '@tandem/contracts';

/** The fingerprint of a request's data: the same idempotency key with another fingerprint is a conflict. */
export function requestHash(data: TaskRequestedData): string {
  return createHash('sha256')
    .update(
      canonicalJson({
        goal: data.goal,
        input: data.input ?? null,
        kind: data.kind ?? 'general',
        agentId: data.agentId ?? null,
      }),
    )
    .digest('hex');
}
