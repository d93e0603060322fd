import { inspect } from 'node:util';
import { TandemError } from '@tandem/contracts';
import OpenAI from 'openai';
import { z } from 'zod';
import { redactSecrets } from './secret.js';

// Wire names: these codes travel on the bus and in stored ModelCall rows; renaming one breaks
// messages in flight. Each is declared in @tandem/contracts' `ErrorCodes` (the `MODEL.*` codes); the
// type test in test/errors.test.ts keeps this list and that one equal.
/** Every error code a model call can fail with. */
export const ModelErrorCode = z.enum([
  'MODEL.RATE_LIMITED',
  'MODEL.SERVER_ERROR',
  'MODEL.TIMEOUT',
  'MODEL.CONNECTION',
  'MODEL.BAD_REQUEST',
  'MODEL.UNAUTHORIZED',
  'MODEL.INVALID_RESPONSE',
  'MODEL.ABORTED',
  // Raised by the selector, never by a single endpoint:
  /** Every candidate that could take the request has its circuit breaker open. */
  'MODEL.UNAVAILABLE',
  /** `preference.model` names no candidate of the role. */
  'MODEL.UNKNOWN_CANDIDATE',
  /** The prompt is larger than every candidate's context window. */
  'MODEL.CONTEXT_TOO_LARGE',
]);
/** Every error code a model call can fail with. */
export type ModelErrorCode = z.infer<typeof ModelErrorCode>;

/** Options of a `ModelError`. */
export interface ModelErrorOptions {
  retryable: boolean;
  cause?: unknown;
  /** HTTP status of the endpoint's answer, when there was one. */
  status?: number;
  /** How long the endpoint asked to wait (`retry-after` / `retry-after-ms`). */
  retryAfterMs?: number;
}

/**
 * A failed model call: a `TandemError` whose code is a `MODEL.*` code; its message never contains an
 * API key. `details` holds `status` and `retryAfterMs` when known. Send `toJSON()` (or `toShape()`)
 * across processes, never rely on `instanceof`.
 */
export class ModelError extends TandemError {
  override readonly name = 'ModelError';
  override readonly code: ModelErrorCode;
  override readonly details: Record<string, number> | undefined;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(code: ModelErrorCode, message: string, options: ModelErrorOptions) {
    const details = modelErrorDetails(options);
    super(code, message, { retryable: options.retryable, cause: options.cause, details });
    this.code = code;
    this.details = details;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** The cross-process shape `{ code, message, retryable, details? }` (the same as `toShape()`). */
  toJSON(): { code: ModelErrorCode; message: string; retryable: boolean; details?: Record<string, number> } {
    return {
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      ...(this.details === undefined ? {} : { details: { ...this.details } }),
    };
  }
}

function modelErrorDetails(options: ModelErrorOptions): Record<string, number> | undefined {
  const details: Record<string, number> = {};
  if (options.status !== undefined) details['status'] = options.status;
  if (options.retryAfterMs !== undefined) details['retryAfterMs'] = options.retryAfterMs;
  return Object.keys(details).length > 0 ? details : undefined;
}

/**
 * Maps whatever the openai SDK threw to a `ModelError`. The original error is kept as `cause` only
 * when no secret appears anywhere in it (a server may echo the key back in its error body).
 */
export function toModelError(error: unknown, secrets: readonly string[], context: string): ModelError {
  if (error instanceof ModelError) return error;
  const safeCause = containsSecret(error, secrets)
    ? new Error(redactSecrets(describe(error), secrets))
    : error;
  const message = (text: string): string => redactSecrets(`${context}: ${text}`, secrets);

  if (error instanceof OpenAI.APIUserAbortError) {
    return new ModelError('MODEL.ABORTED', message('the call was aborted by the caller'), {
      retryable: false,
      cause: safeCause,
    });
  }
  if (error instanceof OpenAI.APIConnectionTimeoutError) {
    return new ModelError('MODEL.TIMEOUT', message('the model did not answer in time'), {
      retryable: true,
      cause: safeCause,
    });
  }
  if (error instanceof OpenAI.APIConnectionError) {
    return new ModelError(
      'MODEL.CONNECTION',
      message(`could not reach the model endpoint (${describe(error)})`),
      {
        retryable: true,
        cause: safeCause,
      },
    );
  }
  if (error instanceof OpenAI.APIError && typeof error.status === 'number') {
    const status = error.status;
    const options = { cause: safeCause, status, retryAfterMs: retryAfterMs(error.headers) };
    const text = message(describe(error));
    if (status === 429) return new ModelError('MODEL.RATE_LIMITED', text, { ...options, retryable: true });
    if (status === 408) return new ModelError('MODEL.TIMEOUT', text, { ...options, retryable: true });
    if (status >= 500 || status === 409) {
      return new ModelError('MODEL.SERVER_ERROR', text, { ...options, retryable: true });
    }
    if (status === 401 || status === 403) {
      return new ModelError('MODEL.UNAUTHORIZED', text, { ...options, retryable: false });
    }
    if (status >= 400) return new ModelError('MODEL.BAD_REQUEST', text, { ...options, retryable: false });
  }
  return new ModelError(
    'MODEL.INVALID_RESPONSE',
    message(`unexpected answer from the model endpoint (${describe(error)})`),
    {
      retryable: false,
      cause: safeCause,
    },
  );
}

function retryAfterMs(headers: Headers | undefined): number | undefined {
  const millis = Number(headers?.get('retry-after-ms') ?? Number.NaN);
  if (Number.isFinite(millis) && millis >= 0) return millis;
  const value = headers?.get('retry-after');
  if (value === null || value === undefined) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function containsSecret(error: unknown, secrets: readonly string[]): boolean {
  const text = inspect(error, { depth: 6, showHidden: false });
  return secrets.some((secret) => secret.length >= 4 && text.includes(secret));
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message === '' ? error.name : error.message;
  return String(error);
}
