import { z } from 'zod';

/**
 * Every error code Tandem sends across a wire (bus, HTTP, stored rows).
 * Wire names: renaming a code breaks consumers that match on it — add a new one instead.
 */
export const ErrorCodes = {
  BUS_UNPARSEABLE: 'BUS.UNPARSEABLE',
  BUS_SCHEMA_INVALID: 'BUS.SCHEMA_INVALID',
  BUS_MAX_DELIVERIES: 'BUS.MAX_DELIVERIES',
  BUS_HANDLER_FAILED: 'BUS.HANDLER_FAILED',
  TASK_CONFLICT: 'TASK.IDEMPOTENCY_CONFLICT',
  TASK_NOT_FOUND: 'TASK.NOT_FOUND',
  TASK_RESERVED_SOURCE: 'TASK.RESERVED_SOURCE',
  TOOL_ARGUMENTS_TOO_LARGE: 'TOOL.ARGUMENTS_TOO_LARGE',
  TOOL_INVALID_JSON: 'TOOL.INVALID_JSON',
  TOOL_UNKNOWN_FUNCTION: 'TOOL.UNKNOWN_FUNCTION',
  TOOL_ARGUMENTS_TOO_DEEP: 'TOOL.ARGUMENTS_TOO_DEEP',
  TOOL_INVALID_ARGUMENTS: 'TOOL.INVALID_ARGUMENTS',
  TOOL_SEMANTIC: 'TOOL.SEMANTIC_CHECK_FAILED',
  PLAN_EMPTY: 'PLAN.EMPTY',
  PLAN_TOO_MANY_STEPS: 'PLAN.TOO_MANY_STEPS',
  PLAN_MISSING_RESPOND: 'PLAN.MISSING_RESPOND',
  PLAN_BAD_REFERENCE: 'PLAN.BAD_REFERENCE',
  PLAN_NO_TOOL_CALLS: 'PLAN.NO_TOOL_CALLS',
  PLAN_REJECTED: 'PLAN.REJECTED',
  MODEL_RATE_LIMITED: 'MODEL.RATE_LIMITED',
  MODEL_SERVER_ERROR: 'MODEL.SERVER_ERROR',
  MODEL_TIMEOUT: 'MODEL.TIMEOUT',
  MODEL_CONNECTION: 'MODEL.CONNECTION',
  MODEL_BAD_REQUEST: 'MODEL.BAD_REQUEST',
  MODEL_INVALID_RESPONSE: 'MODEL.INVALID_RESPONSE',
  CODE_GENERATION_FAILED: 'CODE.GENERATION_FAILED',
  APPROVAL_REJECTED: 'APPROVAL.REJECTED',
  APPROVAL_NOT_FOUND: 'APPROVAL.NOT_FOUND',
  APPROVAL_ALREADY_DECIDED: 'APPROVAL.ALREADY_DECIDED',
  SANDBOX_ERROR: 'SANDBOX.ERROR',
  SANDBOX_TIMEOUT: 'SANDBOX.TIMEOUT',
  SANDBOX_MEMORY_LIMIT: 'SANDBOX.MEMORY_LIMIT',
  SANDBOX_OUTPUT_LIMIT: 'SANDBOX.OUTPUT_LIMIT',
  SANDBOX_KILLED: 'SANDBOX.KILLED',
  SANDBOX_UNAVAILABLE: 'SANDBOX.UNAVAILABLE',
  STEP_FAILED: 'STEP.FAILED',
  HTTP_BAD_REQUEST: 'HTTP.BAD_REQUEST',
  HTTP_NOT_FOUND: 'HTTP.NOT_FOUND',
  HTTP_CONFLICT: 'HTTP.CONFLICT',
  INTERNAL: 'INTERNAL.ERROR',
} as const;

/** One of the error code string literals in {@link ErrorCodes}. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** The shape of an error on the bus, over HTTP and in stored rows. */
export const ErrorShape = z.object({
  code: z.string().min(1),
  message: z.string(),
  retryable: z.boolean().default(false),
  details: z.unknown().optional(),
});
/** The shape of an error on the bus, over HTTP and in stored rows. */
export type ErrorShape = z.infer<typeof ErrorShape>;

/** A failure with a stable code; `retryable` says whether the same work may succeed later. */
export class TandemError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly details: unknown;

  constructor(
    code: string,
    message: string,
    options: { retryable?: boolean; cause?: unknown; details?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TandemError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }

  /** The wire form; never relies on `instanceof` at the receiving end. */
  toShape(): ErrorShape {
    return this.details === undefined
      ? { code: this.code, message: this.message, retryable: this.retryable }
      : { code: this.code, message: this.message, retryable: this.retryable, details: this.details };
  }
}

/** Turns anything thrown into the wire error shape (unknown errors become INTERNAL.ERROR, retryable). */
export function toErrorShape(error: unknown): ErrorShape {
  if (error instanceof TandemError) return error.toShape();
  if (typeof error === 'object' && error !== null && 'code' in error && 'message' in error) {
    const code = (error as { code: unknown }).code;
    const message = (error as { message: unknown }).message;
    const retryable = 'retryable' in error ? (error as { retryable: unknown }).retryable : undefined;
    if (typeof code === 'string' && code.includes('.') && typeof message === 'string') {
      return { code, message, retryable: retryable === true };
    }
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: ErrorCodes.INTERNAL, message, retryable: true };
}
