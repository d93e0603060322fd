import { ErrorCodes, TandemError } from '@tandem/contracts';
import { verifyCloudEventSignature } from '@tandem/webhooks';
import { z } from 'zod';

const JsonObject = z.record(z.string(), z.unknown());

/*
 * Proven sources (docs/architecture/security.md). A CloudEvent's `source` is a claim; it is proven when
 * the event carries a `tandemsig` that verifies with a secret configured for that source
 * (TANDEM_SOURCE_SECRETS). A proven event's task records `submittedBy: source:<source>`, which is what
 * lets the approval service use the trust of an agent the policy lists for that source. An event from a
 * source without secrets is accepted unproven (no trust used or changed, as before). A source with
 * secrets must sign: an unsigned or badly signed event claiming it is refused, so nobody can take its
 * idempotency keys either.
 */

/** Signing secrets per CloudEvent source (at most two per source, while rotating). */
export type SourceSecrets = ReadonlyMap<string, readonly string[]>;

/** Who a CloudEvent's task is recorded as submitted by: `source:<source>` when proven, else null. */
export function proveSource(event: { source: string }, json: unknown, secrets: SourceSecrets): string | null {
  const configured = secrets.get(event.source);
  if (configured === undefined || configured.length === 0) return null;
  const record = JsonObject.safeParse(json);
  const verified = record.success
    ? verifyCloudEventSignature(record.data, configured)
    : { ok: false as const, reason: 'malformed' as const };
  if (!verified.ok) {
    throw new TandemError(
      ErrorCodes.TASK_SOURCE_UNPROVEN,
      verified.reason === 'missing'
        ? `source ${JSON.stringify(event.source)} signs its events, but this one carries no tandemsig`
        : `the tandemsig of this event does not verify for source ${JSON.stringify(event.source)} (${verified.reason})`,
    );
  }
  return `source:${event.source}`;
}
