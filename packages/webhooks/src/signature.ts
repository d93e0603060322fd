import { createHmac, timingSafeEqual } from 'node:crypto';
import { secretKey } from './secrets.js';

/** The replay window of the Standard Webhooks reference libraries: five minutes either way. */
const DEFAULT_TOLERANCE_SECONDS = 300;
/** A sender signs with at most a few secrets at once; more is an attempt to make verification expensive. */
const MAX_SIGNATURES = 16;
const TIMESTAMP = /^\d{1,12}$/;

/** The headers of a signed webhook, named as Standard Webhooks names them (a type, so it fits a headers record). */
export type WebhookHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

/** What to sign: the message id (the same for every retry), when it is sent, the exact body and the secrets. */
export interface SignWebhookInput {
  id: string;
  /** A Date or unix seconds. */
  timestamp: Date | number;
  body: string;
  /** One `v1` signature is made per secret, so receivers holding either secret of a rotation verify. */
  secrets: readonly string[];
}

/** Why a webhook was refused, as a value: every reason is an expected outcome of untrusted input. */
export type WebhookVerificationFailure =
  'missing-headers' | 'bad-timestamp' | 'stale' | 'future' | 'bad-signature' | 'no-secret';

/** The outcome of verifying a webhook: its id and timestamp, or why it was refused. */
export type WebhookVerification =
  | { ok: true; id: string; timestamp: number }
  | { ok: false; reason: WebhookVerificationFailure; message: string };

/** A received webhook and what to verify it with. */
export interface VerifyWebhookInput {
  /** The request's headers; names are matched case-insensitively. */
  headers: Record<string, string | string[] | undefined>;
  /** The raw body, exactly as received (not re-serialized JSON). */
  body: string;
  /** The accepted secrets (two during a rotation). */
  secrets: readonly string[];
  /** How far the timestamp may be from now, either way (default 300). */
  toleranceSeconds?: number;
  now?: Date;
}

/** Signs a webhook: the three Standard Webhooks headers, one `v1` signature per secret. */
export function signWebhook(input: SignWebhookInput): WebhookHeaders {
  if (input.id.trim() === '' || /\s/.test(input.id)) {
    throw new Error('a webhook id must be non-empty and contain no whitespace');
  }
  if (input.secrets.length === 0) throw new Error('signing a webhook needs at least one secret');
  const timestamp =
    typeof input.timestamp === 'number' ? input.timestamp : Math.floor(input.timestamp.getTime() / 1000);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new RangeError(`a webhook timestamp is whole unix seconds, not ${String(input.timestamp)}`);
  }
  const signatures = input.secrets.map(
    (secret) => `v1,${sign(secretKey(secret), input.id, timestamp, input.body)}`,
  );
  return {
    'webhook-id': input.id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signatures.join(' '),
  };
}

/**
 * Verifies a webhook against any of the given secrets and any `v1` signature of its header (other
 * versions are ignored), and checks that its timestamp is within the tolerance. Refusals are values; it
 * throws only for a malformed secret, which is a configuration error. Replays inside the window are the
 * caller's to refuse, by remembering the returned id.
 */
export function verifyWebhook(input: VerifyWebhookInput): WebhookVerification {
  if (input.secrets.length === 0) {
    return refuse('no-secret', 'no webhook secret is configured, so no webhook can be verified');
  }
  const keys = input.secrets.map(secretKey);
  const headers = lowerCaseHeaders(input.headers);

  const id = singleHeader(headers, 'webhook-id');
  const timestampHeader = singleHeader(headers, 'webhook-timestamp');
  const signatureHeader = joinedHeader(headers, 'webhook-signature');
  if (typeof id !== 'string' || typeof timestampHeader !== 'string' || signatureHeader === undefined) {
    const problems = [id, timestampHeader].flatMap((header) =>
      typeof header === 'string' ? [] : [header.problem],
    );
    if (signatureHeader === undefined) problems.push('webhook-signature is missing');
    return refuse('missing-headers', problems.join('; '));
  }

  if (!TIMESTAMP.test(timestampHeader)) {
    return refuse('bad-timestamp', 'webhook-timestamp is not whole unix seconds');
  }
  const timestamp = Number(timestampHeader);
  const now = Math.floor((input.now ?? new Date()).getTime() / 1000);
  const tolerance = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (now - timestamp > tolerance) {
    return refuse(
      'stale',
      `webhook-timestamp is ${now - timestamp} s old; at most ${tolerance} s are accepted`,
    );
  }
  if (timestamp - now > tolerance) {
    return refuse(
      'future',
      `webhook-timestamp is ${timestamp - now} s ahead; at most ${tolerance} s are accepted`,
    );
  }

  const candidates = versionOneSignatures(signatureHeader);
  if (candidates.length === 0) return refuse('bad-signature', 'webhook-signature holds no v1 signature');
  if (candidates.length > MAX_SIGNATURES) {
    return refuse('bad-signature', `webhook-signature holds more than ${MAX_SIGNATURES} signatures`);
  }

  // Every expected signature is compared with every candidate, without stopping at a match, so the time
  // taken says nothing about which comparison failed.
  let matched = false;
  for (const key of keys) {
    const expected = Buffer.from(sign(key, id, timestamp, input.body));
    for (const candidate of candidates) {
      matched = constantTimeEqual(expected, candidate) || matched;
    }
  }
  if (!matched) return refuse('bad-signature', 'no webhook-signature matches a configured secret');
  return { ok: true, id, timestamp };
}

function sign(key: Buffer, id: string, timestamp: number, body: string): string {
  return createHmac('sha256', key).update(`${id}.${timestamp}.${body}`, 'utf8').digest('base64');
}

export function constantTimeEqual(expected: Buffer, candidate: string): boolean {
  const actual = Buffer.from(candidate);
  // timingSafeEqual needs equal lengths; a signature's length is public (44 characters), so comparing
  // the expected value with itself only keeps the work the same.
  if (actual.length !== expected.length) {
    timingSafeEqual(expected, expected);
    return false;
  }
  return timingSafeEqual(expected, actual);
}

/** The `v1` signatures of a header (also of a CloudEvent signature attribute): space-separated `<version>,<base64>` entries. */
export function versionOneSignatures(header: string): string[] {
  const signatures: string[] = [];
  for (const entry of header.split(/\s+/)) {
    // Node joins a repeated header with ", ", leaving a trailing comma on all but the last entry; base64
    // has no comma, so dropping it changes no signature.
    const token = entry.replace(/,$/, '');
    const comma = token.indexOf(',');
    if (comma === -1) continue;
    if (token.slice(0, comma) !== 'v1') continue;
    signatures.push(token.slice(comma + 1));
  }
  return signatures;
}

type HeaderValue = string | { problem: string };

function lowerCaseHeaders(headers: VerifyWebhookInput['headers']): Map<string, string[]> {
  const lowered = new Map<string, string[]>();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const key = name.toLowerCase();
    lowered.set(key, [...(lowered.get(key) ?? []), ...(typeof value === 'string' ? [value] : value)]);
  }
  return lowered;
}

/** A header that must appear once, or what is wrong with it. */
function singleHeader(headers: Map<string, string[]>, name: string): HeaderValue {
  const values = (headers.get(name) ?? []).filter((value) => value.trim() !== '');
  if (values.length === 0) return { problem: `${name} is missing` };
  const [value] = values;
  if (values.length > 1 || value === undefined) return { problem: `${name} appears ${values.length} times` };
  return value.trim();
}

/** A header that may repeat (its values joined by spaces), or undefined when absent or empty. */
function joinedHeader(headers: Map<string, string[]>, name: string): string | undefined {
  const joined = (headers.get(name) ?? []).join(' ').trim();
  return joined === '' ? undefined : joined;
}

function refuse(reason: WebhookVerificationFailure, message: string): WebhookVerification {
  return { ok: false, reason, message };
}
