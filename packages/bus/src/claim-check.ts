import { ErrorCodes } from '@tandem/contracts';
import { readOutboxPayload, type Db } from '@tandem/db';
import { MSG_ID_HEADER } from './headers.js';

/**
 * The header of a claim-check message: its value is the outbox id whose row holds the real payload (the
 * same id as `Nats-Msg-Id`). Wire name: renaming it makes consumers read references as payloads.
 */
export const CLAIM_CHECK_HEADER = 'Tandem-Claim-Check';

/** Payloads of more serialized bytes than this are sent as a claim check by default: 256 KiB. */
export const DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES = 256 * 1024;

/**
 * The body of a claim-check message: `{"claimCheck":{"outboxId":"<id>","bytes":<size of the real payload>}}`.
 * Wire format (read by consumers of every version): add fields, never rename them.
 */
export interface ClaimCheckBody {
  claimCheck: { outboxId: string; bytes: number };
}

/** The small body sent in place of a payload of `bytes` bytes stored as outbox row `outboxId`. */
export function claimCheckBody(outboxId: string, bytes: number): string {
  const body: ClaimCheckBody = { claimCheck: { outboxId, bytes } };
  return JSON.stringify(body);
}

/** The payload to read: the message's own bytes, or the stored one; or why it cannot be had. */
export type ClaimCheckResolution =
  { ok: true; data: Uint8Array; claimCheck: boolean } | { ok: false; code: string; reason: string };

const encoder = new TextEncoder();
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * For a message with a `Tandem-Claim-Check` header, loads the real payload from its Outbox row (the one
 * consumer call, before limits, schema and handler, so handlers never see a reference). The row must be
 * the message's own: same id as `Nats-Msg-Id` and same subject, so a publisher cannot make a consumer read
 * another subject's row. A message without the header resolves to its own bytes at once. Throws when the
 * database does (the message is then redelivered).
 */
export async function resolveClaimCheck(
  db: Pick<Db, 'kysely'>,
  subject: string,
  headers: Readonly<Record<string, string>>,
  data: Uint8Array,
): Promise<ClaimCheckResolution> {
  const outboxId = headers[CLAIM_CHECK_HEADER];
  if (outboxId === undefined) return { ok: true, data, claimCheck: false };
  if (headers[MSG_ID_HEADER] !== outboxId)
    return {
      ok: false,
      code: ErrorCodes.BUS_CLAIM_CHECK_MISSING,
      reason: `claim check ${outboxId} does not match the message id ${headers[MSG_ID_HEADER] ?? '(none)'}`,
    };
  if (!UUID.test(outboxId))
    return {
      ok: false,
      code: ErrorCodes.BUS_CLAIM_CHECK_MISSING,
      reason: `claim check ${outboxId} is not an outbox id`,
    };
  const stored = await readOutboxPayload(db, outboxId);
  if (stored === null)
    return {
      ok: false,
      code: ErrorCodes.BUS_CLAIM_CHECK_MISSING,
      reason: `no outbox row ${outboxId} for a claim check`,
    };
  if (stored.subject !== subject)
    return {
      ok: false,
      code: ErrorCodes.BUS_CLAIM_CHECK_MISSING,
      reason: `outbox row ${outboxId} was written for ${stored.subject}, not ${subject}`,
    };
  return { ok: true, data: encoder.encode(stored.payload), claimCheck: true };
}
