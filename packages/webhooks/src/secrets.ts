import { randomBytes } from 'node:crypto';

/** The prefix of a Standard Webhooks secret. */
export const SECRET_PREFIX = 'whsec_';

/** Bytes of key material in a generated secret (the spec allows 24 to 64). */
const GENERATED_KEY_BYTES = 32;
const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;
/** Two secrets cover a rotation: the new one and the one being retired. */
const MAX_SECRETS = 2;

// Strict base64 (standard alphabet, padded): Buffer.from(_, 'base64') skips invalid characters silently,
// which would turn a typo in a secret into a different key instead of an error.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A new secret: `whsec_` + the base64 of 32 random bytes. */
export function generateWebhookSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(GENERATED_KEY_BYTES).toString('base64')}`;
}

/**
 * The HMAC key of a secret. Like the reference libraries, the `whsec_` prefix is optional here and the
 * rest is base64; unlike them, malformed base64 throws instead of decoding to some other key.
 */
export function secretKey(secret: string): Buffer {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (encoded.length === 0 || !BASE64.test(encoded)) {
    throw new Error(`a webhook secret must be ${SECRET_PREFIX} followed by base64 (${describe(secret)})`);
  }
  return Buffer.from(encoded, 'base64');
}

/**
 * Parses a comma-separated list of secrets (e.g. one environment variable): `whsec_<base64 of 24..64
 * bytes>`, at most two (the new secret and the one being retired). An empty or absent value is no
 * secrets. Throws an Error that names the bad entry by position, never by its value.
 */
export function parseSecrets(value: string | undefined): string[] {
  if (value === undefined || value.trim() === '') return [];
  const secrets = value.split(',').map((entry) => entry.trim());
  secrets.forEach((secret, index) => {
    const position = `webhook secret ${index + 1} of ${secrets.length}`;
    if (secret === '') throw new Error(`${position} is empty`);
    if (!secret.startsWith(SECRET_PREFIX)) {
      throw new Error(`${position} must start with ${SECRET_PREFIX} (${describe(secret)})`);
    }
    const encoded = secret.slice(SECRET_PREFIX.length);
    if (!BASE64.test(encoded) || encoded.length === 0) {
      throw new Error(`${position} is not ${SECRET_PREFIX} followed by padded base64 (${describe(secret)})`);
    }
    const bytes = Buffer.from(encoded, 'base64').length;
    if (bytes < MIN_KEY_BYTES || bytes > MAX_KEY_BYTES) {
      throw new Error(
        `${position} holds ${bytes} bytes of key; a secret holds ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} (generate one with generateWebhookSecret)`,
      );
    }
  });
  if (secrets.length > MAX_SECRETS) {
    throw new Error(
      `${secrets.length} webhook secrets given; at most ${MAX_SECRETS} (the new one and the one being retired)`,
    );
  }
  if (new Set(secrets).size !== secrets.length) throw new Error('the same webhook secret is given twice');
  return secrets;
}

/** Says what is wrong with a secret without revealing it. */
function describe(secret: string): string {
  return `${secret.length} characters`;
}
