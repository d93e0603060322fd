// @tandem/webhooks: Standard Webhooks (https://www.standardwebhooks.com/) signing and verification.

/** A new `whsec_` secret of 32 random bytes. */
export { generateWebhookSecret } from './secrets.js';
/** Parses a comma-separated list of at most two `whsec_` secrets, throwing on a malformed one. */
export { parseSecrets } from './secrets.js';
/** Signs a webhook: `webhook-id`, `webhook-timestamp` and one `v1` signature per secret. */
export { signWebhook } from './signature.js';
/** Verifies a webhook's signature and timestamp window against up to two secrets, in constant time. */
export { verifyWebhook } from './signature.js';
/** Types of signing and verification. */
export type {
  SignWebhookInput,
  VerifyWebhookInput,
  WebhookHeaders,
  WebhookVerification,
  WebhookVerificationFailure,
} from './signature.js';
/** Signs a CloudEvent for its source: the `tandemsig` extension attribute (see event-signature.ts). */
export { signCloudEvent } from './event-signature.js';
/** Verifies a CloudEvent's `tandemsig` against its source's secrets. */
export { verifyCloudEventSignature } from './event-signature.js';
/** The extension attribute of an event's signatures: `tandemsig`. */
export { EVENT_SIGNATURE_ATTRIBUTE } from './event-signature.js';
/** Why an event signature did not verify. */
export type { EventSignatureFailure } from './event-signature.js';
