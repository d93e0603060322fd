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
  /** A service connected with NATS credentials found its durable consumer missing, on another subject, or undeclared. */
  BUS_NOT_PROVISIONED: 'BUS.NOT_PROVISIONED',
  TASK_CONFLICT: 'TASK.IDEMPOTENCY_CONFLICT',
  TASK_NOT_FOUND: 'TASK.NOT_FOUND',
  TASK_RESERVED_SOURCE: 'TASK.RESERVED_SOURCE',
  /**
   * A CloudEvent from a source that has signing secrets carries no valid `tandemsig` (missing, malformed
   * or not matching): dead-lettered, no task. Renaming it breaks messages in flight.
   */
  TASK_SOURCE_UNPROVEN: 'TASK.SOURCE_UNPROVEN',
  TASK_CANCELLED: 'TASK.CANCELLED',
  TASK_DEADLINE_EXCEEDED: 'TASK.DEADLINE_EXCEEDED',
  TASK_NOT_EDITABLE: 'TASK.NOT_EDITABLE',
  TOOL_ARGUMENTS_TOO_LARGE: 'TOOL.ARGUMENTS_TOO_LARGE',
  TOOL_INVALID_JSON: 'TOOL.INVALID_JSON',
  TOOL_UNKNOWN_FUNCTION: 'TOOL.UNKNOWN_FUNCTION',
  TOOL_ARGUMENTS_TOO_DEEP: 'TOOL.ARGUMENTS_TOO_DEEP',
  TOOL_INVALID_ARGUMENTS: 'TOOL.INVALID_ARGUMENTS',
  TOOL_SEMANTIC: 'TOOL.SEMANTIC_CHECK_FAILED',
  /** A key `__proto__`, `constructor` or `prototype` anywhere in the arguments. */
  TOOL_FORBIDDEN_KEY: 'TOOL.FORBIDDEN_KEY',
  /** A workspace path that is absolute, escapes the workspace, or is encoded or disguised. */
  TOOL_PATH_REJECTED: 'TOOL.PATH_REJECTED',
  /** A URL refused by the HTTP policy: scheme, credentials, host not allowed, forbidden address. */
  TOOL_URL_REJECTED: 'TOOL.URL_REJECTED',
  /** An HTTP header that is malformed, forbidden, or a credential given as a literal value. */
  TOOL_HEADER_REJECTED: 'TOOL.HEADER_REJECTED',
  TOOL_LANGUAGE_UNSUPPORTED: 'TOOL.LANGUAGE_UNSUPPORTED',
  TOOL_CODE_TOO_LARGE: 'TOOL.CODE_TOO_LARGE',
  PLAN_EMPTY: 'PLAN.EMPTY',
  PLAN_TOO_MANY_STEPS: 'PLAN.TOO_MANY_STEPS',
  PLAN_MISSING_RESPOND: 'PLAN.MISSING_RESPOND',
  PLAN_BAD_REFERENCE: 'PLAN.BAD_REFERENCE',
  PLAN_NO_TOOL_CALLS: 'PLAN.NO_TOOL_CALLS',
  PLAN_REJECTED: 'PLAN.REJECTED',
  PLAN_CYCLE: 'PLAN.CYCLE',
  PLAN_UNKNOWN_DEPENDENCY: 'PLAN.UNKNOWN_DEPENDENCY',
  PLAN_OVER_BUDGET: 'PLAN.OVER_BUDGET',
  PLAN_DUPLICATE_STEP_ID: 'PLAN.DUPLICATE_STEP_ID',
  PLAN_INVALID_STEP_ID: 'PLAN.INVALID_STEP_ID',
  BUDGET_EXCEEDED: 'BUDGET.EXCEEDED',
  MODEL_RATE_LIMITED: 'MODEL.RATE_LIMITED',
  MODEL_SERVER_ERROR: 'MODEL.SERVER_ERROR',
  MODEL_TIMEOUT: 'MODEL.TIMEOUT',
  MODEL_CONNECTION: 'MODEL.CONNECTION',
  MODEL_BAD_REQUEST: 'MODEL.BAD_REQUEST',
  MODEL_INVALID_RESPONSE: 'MODEL.INVALID_RESPONSE',
  MODEL_UNAUTHORIZED: 'MODEL.UNAUTHORIZED',
  MODEL_ABORTED: 'MODEL.ABORTED',
  MODEL_CONTEXT_TOO_LARGE: 'MODEL.CONTEXT_TOO_LARGE',
  MODEL_UNAVAILABLE: 'MODEL.UNAVAILABLE',
  MODEL_UNKNOWN_CANDIDATE: 'MODEL.UNKNOWN_CANDIDATE',
  CODE_GENERATION_FAILED: 'CODE.GENERATION_FAILED',
  APPROVAL_REJECTED: 'APPROVAL.REJECTED',
  APPROVAL_NOT_FOUND: 'APPROVAL.NOT_FOUND',
  APPROVAL_ALREADY_DECIDED: 'APPROVAL.ALREADY_DECIDED',
  APPROVAL_WRONG_DECISION: 'APPROVAL.WRONG_DECISION',
  APPROVAL_INVALID_ANSWER: 'APPROVAL.INVALID_ANSWER',
  /** A pending request passed its deadline and was rejected (the task fails with this code). */
  APPROVAL_EXPIRED: 'APPROVAL.EXPIRED',
  /** An edited step failed validation (`details.issues`); nothing was decided. */
  APPROVAL_INVALID_EDIT: 'APPROVAL.INVALID_EDIT',
  /**
   * No longer sent (kept so consumers matching on it still compile): a request outside the token's
   * approver groups is now `APPROVAL.NOT_FOUND`, like an unknown one.
   */
  APPROVAL_NOT_YOUR_GROUP: 'APPROVAL.NOT_YOUR_GROUP',
  /**
   * An `approval.*` event (or an approved step) that the approval service's row in Postgres does not back:
   * no such request, not decided, or decided for other arguments. The event is dead-lettered; a step
   * fails with it. Renaming it breaks messages in flight.
   */
  APPROVAL_UNVERIFIED: 'APPROVAL.UNVERIFIED',
  /** An approver's edit raised the step's risk past what their group may approve: it waits for another decision. */
  APPROVAL_EDIT_NEEDS_REVIEW: 'APPROVAL.EDIT_NEEDS_REVIEW',
  /** No bearer token, an unknown one or a revoked one (401). */
  AUTH_UNAUTHENTICATED: 'AUTH.UNAUTHENTICATED',
  /** A valid token whose role may not do this (403). */
  AUTH_FORBIDDEN: 'AUTH.FORBIDDEN',
  /** A submitter token that may not act as the named agent (403). */
  AUTH_AGENT_NOT_ALLOWED: 'AUTH.AGENT_NOT_ALLOWED',
  /** A webhook whose signature is missing, wrong, stale or replayed (401). */
  WEBHOOK_SIGNATURE_INVALID: 'WEBHOOK.SIGNATURE_INVALID',
  /** A step that cannot be reverted (not executed, or already reverted: 409). */
  STEP_NOT_REVERTIBLE: 'STEP.NOT_REVERTIBLE',
  STEP_NOT_FOUND: 'STEP.NOT_FOUND',
  TOKEN_NOT_FOUND: 'TOKEN.NOT_FOUND',
  AGENT_NOT_FOUND: 'AGENT.NOT_FOUND',
  SANDBOX_ERROR: 'SANDBOX.ERROR',
  SANDBOX_TIMEOUT: 'SANDBOX.TIMEOUT',
  SANDBOX_MEMORY_LIMIT: 'SANDBOX.MEMORY_LIMIT',
  SANDBOX_OUTPUT_LIMIT: 'SANDBOX.OUTPUT_LIMIT',
  SANDBOX_KILLED: 'SANDBOX.KILLED',
  SANDBOX_UNAVAILABLE: 'SANDBOX.UNAVAILABLE',
  // issue 12: output (sandbox runs stored once)
  /** A sandbox job whose runner stopped mid-run at every allowed attempt; it is not run again. */
  SANDBOX_INTERRUPTED: 'SANDBOX.INTERRUPTED',
  STEP_FAILED: 'STEP.FAILED',
  HTTP_BAD_REQUEST: 'HTTP.BAD_REQUEST',
  HTTP_NOT_FOUND: 'HTTP.NOT_FOUND',
  HTTP_CONFLICT: 'HTTP.CONFLICT',
  /** An outbound http_request failed: DNS, connection, timeout, too many redirects (`details.reason`). */
  HTTP_REQUEST_FAILED: 'HTTP.REQUEST_FAILED',
  HTTP_RESPONSE_TOO_LARGE: 'HTTP.RESPONSE_TOO_LARGE',
  WORKSPACE_FILE_NOT_FOUND: 'WORKSPACE.FILE_NOT_FOUND',
  /** A workspace quota (file count, file size, total size) would be exceeded. */
  WORKSPACE_LIMIT: 'WORKSPACE.LIMIT',
  // Limits checked on raw JSON text before it is parsed (HTTP bodies, bus payloads).
  /** A bus payload over the consumer's byte limit; dead-lettered on its first delivery. */
  BUS_PAYLOAD_TOO_LARGE: 'BUS.PAYLOAD_TOO_LARGE',
  /** A bus payload nested deeper than the consumer's depth limit; dead-lettered on its first delivery. */
  BUS_PAYLOAD_TOO_DEEP: 'BUS.PAYLOAD_TOO_DEEP',
  /** The stack overflowed while a message was validated or handled; dead-lettered, never retried. */
  BUS_STACK_OVERFLOW: 'BUS.STACK_OVERFLOW',
  /** An HTTP body over the server's byte limit (413). */
  HTTP_BODY_TOO_LARGE: 'HTTP.BODY_TOO_LARGE',
  /** An HTTP JSON body nested deeper than the server's depth limit (400). */
  HTTP_BODY_TOO_DEEP: 'HTTP.BODY_TOO_DEEP',
  // issue 12: outbox relay and claim checks. Wire names: renaming one breaks dead letters and events in flight.
  /** An outbox row that can never be published (over max_payload, a refused subject); dead-lettered, not retried. */
  BUS_OUTBOX_UNPUBLISHABLE: 'BUS.OUTBOX_UNPUBLISHABLE',
  /** NATS refused a publish for good (a subject outside the prefix or not permitted, an invalid subject). */
  BUS_PUBLISH_REFUSED: 'BUS.PUBLISH_REFUSED',
  /** A claim-check message whose outbox row is missing or does not match its subject and id. */
  BUS_CLAIM_CHECK_MISSING: 'BUS.CLAIM_CHECK_MISSING',
  INTERNAL: 'INTERNAL.ERROR',
  // issue 12: database connections and consumer delivery (kit)
  /**
   * A transaction's database connection died under it (server restart, backend killed, socket reset):
   * retryable, the consumer naks and the message comes back. Renaming it breaks messages in flight.
   */
  DB_CONNECTION_LOST: 'DB.CONNECTION_LOST',
  // issue 12: stuck work (executor and planner sweeps). Wire names: renaming one breaks stored outcomes.
  /** A message Tandem published for the task was dead-lettered (`details`: consumer, subject, code, reason). */
  TASK_MESSAGE_DEAD_LETTERED: 'TASK.MESSAGE_DEAD_LETTERED',
  /** The task had not ended and nothing was left that could move it on (no step, approval, job or plan). */
  TASK_STUCK: 'TASK.STUCK',
  /** A step stayed `running` past its lease: the process that ran it stopped (`details.tool`). */
  STEP_LEASE_EXPIRED: 'STEP.LEASE_EXPIRED',
  // issue 13: data layer
  /**
   * A stored row that does not match what its query module expects (a JSON column that fails its schema,
   * a value outside its column's CHECK): never read as an empty default. Not retryable.
   */
  DB_ROW_INVALID: 'DB.ROW_INVALID',
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
