import { createHash } from 'node:crypto';
import type { TaskRequestedData } from '@tandem/contracts';

/** JSON with object keys sorted, so that equal data hashes equally whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, child]) => child !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, child]) => `${JSON.stringify(key)}:${canonicalJson(child)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

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
