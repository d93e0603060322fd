import { createHmac } from 'node:crypto';
import { canonicalJson } from '@tandem/contracts';
import { secretKey } from './secrets.js';
import { constantTimeEqual, versionOneSignatures } from './signature.js';

/*
 * Signed CloudEvents: how a system proves the `source` of an event it publishes on NATS.
 *
 * The publisher holds a secret per source (`whsec_` + base64, as for webhooks; two during a rotation)
 * and adds the extension attribute `tandemsig` = `v1,<base64 HMAC-SHA256>` (space-separated, one per
 * secret). The MAC covers `tandem.cloudevent.v1.` followed by the canonical JSON of the whole event
 * WITHOUT `tandemsig`: object keys sorted by UTF-16 code units, no whitespace, strings and numbers as
 * JSON.stringify writes them — RFC 8785 (JCS) for this JSON. Every attribute and all of `data` are
 * covered, so nothing can be changed or added; a replay is the same event, which the idempotency key
 * (source + id) turns into the same task.
 */

/** The extension attribute holding an event's signatures (wire name: renaming it breaks publishers). */
export const EVENT_SIGNATURE_ATTRIBUTE = 'tandemsig';

const DOMAIN = 'tandem.cloudevent.v1.';
const MAX_SIGNATURES = 4;

/** Why a signature did not verify. */
export type EventSignatureFailure = 'missing' | 'malformed' | 'mismatch';

/** What is MACed: the event without its signature attribute, canonical. */
function signingInput(event: Readonly<Record<string, unknown>>): string {
  const unsigned: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(event)) {
    if (key !== EVENT_SIGNATURE_ATTRIBUTE) unsigned[key] = value;
  }
  return `${DOMAIN}${canonicalJson(unsigned)}`;
}

function mac(key: Buffer, event: Readonly<Record<string, unknown>>): string {
  return createHmac('sha256', key).update(signingInput(event), 'utf8').digest('base64');
}

/** The event with `tandemsig` set: one `v1` signature per secret (the new one first while rotating). */
export function signCloudEvent<T extends Record<string, unknown>>(
  event: T,
  secrets: readonly string[],
): T & { tandemsig: string } {
  if (secrets.length === 0) throw new Error('signing a CloudEvent needs at least one secret');
  const signatures = secrets.map((secret) => `v1,${mac(secretKey(secret), event)}`);
  return { ...event, [EVENT_SIGNATURE_ATTRIBUTE]: signatures.join(' ') } as T & { tandemsig: string };
}

/**
 * Verifies an event's `tandemsig` against the secrets of its source, in constant time per comparison.
 * `missing`: the event carries no signature (an unproven event); `malformed`: the attribute is not a
 * list of `v1,<base64>`; `mismatch`: no signature matches a secret (or the source has none).
 */
export function verifyCloudEventSignature(
  event: Readonly<Record<string, unknown>>,
  secrets: readonly string[],
): { ok: true } | { ok: false; reason: EventSignatureFailure } {
  const attribute = event[EVENT_SIGNATURE_ATTRIBUTE];
  if (attribute === undefined) return { ok: false, reason: 'missing' };
  if (typeof attribute !== 'string') return { ok: false, reason: 'malformed' };
  const candidates = versionOneSignatures(attribute);
  if (candidates.length === 0 || candidates.length > MAX_SIGNATURES)
    return { ok: false, reason: 'malformed' };
  let matched = false;
  for (const secret of secrets) {
    const expected = Buffer.from(mac(secretKey(secret), event));
    for (const candidate of candidates) matched = constantTimeEqual(expected, candidate) || matched;
  }
  return matched ? { ok: true } : { ok: false, reason: 'mismatch' };
}
