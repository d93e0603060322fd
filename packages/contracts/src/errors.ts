import { z } from 'zod';

/**
 * Every error code Tandem sends across a wire (bus, HTTP, stored rows).
 * Wire names: renaming a code breaks consumers that match on it — add a new one instead.
 */
export const ErrorCodes = {
  /** A bus payload that is not JSON (or not UTF-8); dead-lettered on its first delivery. */
  BUS_UNPARSEABLE: 'BUS.UNPARSEABLE',
  /** A bus payload that its subject's schema refuses (`reason` lists the issues); dead-lettered on its first delivery. */
  BUS_SCHEMA_INVALID: 'BUS.SCHEMA_INVALID',
  /** A message whose handler failed (or hung) on every one of the consumer's `max_deliver` deliveries; dead-lettered. */
  BUS_MAX_DELIVERIES: 'BUS.MAX_DELIVERIES',
  /** Declared but not sent by this version: a failing handler's message is dead-lettered with the handler's own code, or `BUS.MAX_DELIVERIES`. */
  BUS_HANDLER_FAILED: 'BUS.HANDLER_FAILED',
  /** A service connected with NATS credentials found its durable consumer missing, on another subject, or undeclared. */
  BUS_NOT_PROVISIONED: 'BUS.NOT_PROVISIONED',
  /**
   * The same source and external id submitted again with other data (409; dead-lettered on the bus).
   * Retryable when the task vanished while it was being accepted.
   */
  TASK_CONFLICT: 'TASK.IDEMPOTENCY_CONFLICT',
  /** No such task, or one the caller may not reach (404, the same answer for both). */
  TASK_NOT_FOUND: 'TASK.NOT_FOUND',
  /** A `task.requested` CloudEvent that claims the source reserved for HTTP submissions; dead-lettered. */
  TASK_RESERVED_SOURCE: 'TASK.RESERVED_SOURCE',
  /**
   * A CloudEvent from a source that has signing secrets carries no valid `tandemsig` (missing, malformed
   * or not matching): dead-lettered, no task. Renaming it breaks messages in flight.
   */
  TASK_SOURCE_UNPROVEN: 'TASK.SOURCE_UNPROVEN',
  /** The task was cancelled; its unfinished steps end with this code. */
  TASK_CANCELLED: 'TASK.CANCELLED',
  /** The task's deadline passed before it ended (while planning, waiting or running). */
  TASK_DEADLINE_EXCEEDED: 'TASK.DEADLINE_EXCEEDED',
  /** The task's plan can no longer be edited or replanned: it is running or has ended (409). */
  TASK_NOT_EDITABLE: 'TASK.NOT_EDITABLE',
  /** A tool call's arguments are over the byte limit (checked on the raw text, before parsing). */
  TOOL_ARGUMENTS_TOO_LARGE: 'TOOL.ARGUMENTS_TOO_LARGE',
  /** A tool call's arguments are not valid JSON. */
  TOOL_INVALID_JSON: 'TOOL.INVALID_JSON',
  /** A tool call names no registered tool (`details.suggestion` names a look-alike's tool). */
  TOOL_UNKNOWN_FUNCTION: 'TOOL.UNKNOWN_FUNCTION',
  /** A tool call's arguments nest deeper than the depth limit. */
  TOOL_ARGUMENTS_TOO_DEEP: 'TOOL.ARGUMENTS_TOO_DEEP',
  /** A tool call's arguments are not an object or do not match the tool's input schema. */
  TOOL_INVALID_ARGUMENTS: 'TOOL.INVALID_ARGUMENTS',
  /** A tool call's arguments match the schema but fail one of the tool's own checks (`details.issues`). */
  TOOL_SEMANTIC: 'TOOL.SEMANTIC_CHECK_FAILED',
  /** A key `__proto__`, `constructor` or `prototype` anywhere in the arguments. */
  TOOL_FORBIDDEN_KEY: 'TOOL.FORBIDDEN_KEY',
  /** A workspace path that is absolute, escapes the workspace, or is encoded or disguised. */
  TOOL_PATH_REJECTED: 'TOOL.PATH_REJECTED',
  /** A URL refused by the HTTP policy: scheme, credentials, host not allowed, forbidden address. */
  TOOL_URL_REJECTED: 'TOOL.URL_REJECTED',
  /** An HTTP header that is malformed, forbidden, or a credential given as a literal value. */
  TOOL_HEADER_REJECTED: 'TOOL.HEADER_REJECTED',
  /** A `run_code` call in a language the sandbox does not offer. */
  TOOL_LANGUAGE_UNSUPPORTED: 'TOOL.LANGUAGE_UNSUPPORTED',
  /** A `run_code` call whose code is longer than the sandbox accepts. */
  TOOL_CODE_TOO_LARGE: 'TOOL.CODE_TOO_LARGE',
  /** A plan without steps. */
  PLAN_EMPTY: 'PLAN.EMPTY',
  /** A plan with more steps than the limit. */
  PLAN_TOO_MANY_STEPS: 'PLAN.TOO_MANY_STEPS',
  /** A plan without exactly one `respond` step as its last step. */
  PLAN_MISSING_RESPOND: 'PLAN.MISSING_RESPOND',
  /** A step that depends on, or refers to, something it may not (the `respond` step). */
  PLAN_BAD_REFERENCE: 'PLAN.BAD_REFERENCE',
  /** The planning model answered without any function call. */
  PLAN_NO_TOOL_CALLS: 'PLAN.NO_TOOL_CALLS',
  /** No valid plan came out of planning (the last problem found is in the message). */
  PLAN_REJECTED: 'PLAN.REJECTED',
  /** Steps that depend on each other in a cycle, or a step that depends on itself. */
  PLAN_CYCLE: 'PLAN.CYCLE',
  /** A step that depends on, or refers to `{{steps.<id>...}}` of, a step the plan does not have. */
  PLAN_UNKNOWN_DEPENDENCY: 'PLAN.UNKNOWN_DEPENDENCY',
  /** A plan whose estimated cost is over the task's budget. */
  PLAN_OVER_BUDGET: 'PLAN.OVER_BUDGET',
  /** Two steps with the same id. */
  PLAN_DUPLICATE_STEP_ID: 'PLAN.DUPLICATE_STEP_ID',
  /** A step id that is not 1-64 letters, digits, `_` or `-`. */
  PLAN_INVALID_STEP_ID: 'PLAN.INVALID_STEP_ID',
  /** The task reached a limit of its budget (`details`: limit, max, spent); permanent, no further model call. */
  BUDGET_EXCEEDED: 'BUDGET.EXCEEDED',
  /** The model endpoint answered 429; retryable (`details.retryAfterMs` when it said how long). */
  MODEL_RATE_LIMITED: 'MODEL.RATE_LIMITED',
  /** The model endpoint answered 5xx or 409; retryable. */
  MODEL_SERVER_ERROR: 'MODEL.SERVER_ERROR',
  /** The model endpoint did not answer in time (or answered 408); retryable. */
  MODEL_TIMEOUT: 'MODEL.TIMEOUT',
  /** The model endpoint could not be reached; retryable. */
  MODEL_CONNECTION: 'MODEL.CONNECTION',
  /** The model endpoint refused the request (4xx other than 401, 403, 408, 409, 429); permanent. */
  MODEL_BAD_REQUEST: 'MODEL.BAD_REQUEST',
  /** The model endpoint's answer could not be used (malformed, unexpected); permanent. */
  MODEL_INVALID_RESPONSE: 'MODEL.INVALID_RESPONSE',
  /** The model endpoint refused the API key (401, 403); permanent. */
  MODEL_UNAUTHORIZED: 'MODEL.UNAUTHORIZED',
  /** The caller aborted the model call; permanent. */
  MODEL_ABORTED: 'MODEL.ABORTED',
  /** The prompt is larger than every candidate model's context window; permanent. */
  MODEL_CONTEXT_TOO_LARGE: 'MODEL.CONTEXT_TOO_LARGE',
  /** Every candidate model of the role has its circuit breaker open; retryable. */
  MODEL_UNAVAILABLE: 'MODEL.UNAVAILABLE',
  /** A task's model preference names no candidate of the role; permanent. */
  MODEL_UNKNOWN_CANDIDATE: 'MODEL.UNKNOWN_CANDIDATE',
  /** The code model answered without code, or with more than the sandbox accepts. */
  CODE_GENERATION_FAILED: 'CODE.GENERATION_FAILED',
  /** An approver rejected the step; the task fails with this code. */
  APPROVAL_REJECTED: 'APPROVAL.REJECTED',
  /** No such approval request, or one outside the caller's approver groups (404). */
  APPROVAL_NOT_FOUND: 'APPROVAL.NOT_FOUND',
  /** The approval request was decided before this decision arrived (409). */
  APPROVAL_ALREADY_DECIDED: 'APPROVAL.ALREADY_DECIDED',
  /** A decision that does not fit the request (an answer to an approval, an approval of a question). */
  APPROVAL_WRONG_DECISION: 'APPROVAL.WRONG_DECISION',
  /** An answer that is not one of the question's choices. */
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
  /** No such step, or one the caller may not reach (404). */
  STEP_NOT_FOUND: 'STEP.NOT_FOUND',
  /** No such API token (404). */
  TOKEN_NOT_FOUND: 'TOKEN.NOT_FOUND',
  /** No trust record for the agent (404). */
  AGENT_NOT_FOUND: 'AGENT.NOT_FOUND',
  /** The sandbox failed to run the program (not the program's own failure). */
  SANDBOX_ERROR: 'SANDBOX.ERROR',
  /** The program ran past its time limit. */
  SANDBOX_TIMEOUT: 'SANDBOX.TIMEOUT',
  /** The program ran out of memory. */
  SANDBOX_MEMORY_LIMIT: 'SANDBOX.MEMORY_LIMIT',
  /** The program printed more than its output limit. */
  SANDBOX_OUTPUT_LIMIT: 'SANDBOX.OUTPUT_LIMIT',
  /** The program was killed. */
  SANDBOX_KILLED: 'SANDBOX.KILLED',
  /** The sandbox cannot take the job now (it is still running in this process); retryable. */
  SANDBOX_UNAVAILABLE: 'SANDBOX.UNAVAILABLE',
  // issue 12: output (sandbox runs stored once)
  /** A sandbox job whose runner stopped mid-run at every allowed attempt; it is not run again. */
  SANDBOX_INTERRUPTED: 'SANDBOX.INTERRUPTED',
  /** A step failed without an error of its own (a program that exited non-zero). */
  STEP_FAILED: 'STEP.FAILED',
  /** A request whose parameters, query or body fail the route's schema (400). */
  HTTP_BAD_REQUEST: 'HTTP.BAD_REQUEST',
  /** No such route (404). */
  HTTP_NOT_FOUND: 'HTTP.NOT_FOUND',
  /** A request that conflicts with the current state, e.g. revoking the last admin token (409). */
  HTTP_CONFLICT: 'HTTP.CONFLICT',
  /** An outbound http_request failed: DNS, connection, timeout, too many redirects (`details.reason`). */
  HTTP_REQUEST_FAILED: 'HTTP.REQUEST_FAILED',
  /** An outbound `http_request` whose response is over the byte limit. */
  HTTP_RESPONSE_TOO_LARGE: 'HTTP.RESPONSE_TOO_LARGE',
  /** The task's workspace has no file at that path. */
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
  /** Anything unexpected (a bug, an unknown error); retryable, since the same work may succeed later. */
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
  // issue 13: errors (one TandemError family). The migrator's codes, printed by `pnpm db:migrate` and
  // matched by callers of `migrate()`; renaming one breaks scripts that match on it.
  /** An applied migration's `migration.sql` changed on disk (its checksum differs from the recorded one). */
  MIGRATE_CHECKSUM_MISMATCH: 'MIGRATE.CHECKSUM_MISMATCH',
  /** A migration is recorded as started but not finished; someone has to resolve it before migrating again. */
  MIGRATE_FAILED_MIGRATION_RECORDED: 'MIGRATE.FAILED_MIGRATION_RECORDED',
  /** A migration's SQL failed; its transaction was rolled back. */
  MIGRATE_APPLY_FAILED: 'MIGRATE.APPLY_FAILED',
  /** Another migrator held the advisory lock past the timeout; retryable, trying later may succeed. */
  MIGRATE_LOCK_TIMEOUT: 'MIGRATE.LOCK_TIMEOUT',
  /** A folder in the migrations directory has no `migration.sql`. */
  MIGRATE_INVALID_FOLDER: 'MIGRATE.INVALID_FOLDER',
} as const;

/** One of the error code string literals in {@link ErrorCodes}. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

const DECLARED_CODES: ReadonlySet<string> = new Set<string>(Object.values(ErrorCodes));

/**
 * True when `value` is a code this version declares. A code read from a wire is a plain string (a
 * newer sender may use a code this version does not know yet): narrow it with this before matching.
 */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && DECLARED_CODES.has(value);
}

/** The shape of an error on the bus, over HTTP and in stored rows. */
export const ErrorShape = z.object({
  code: z.string().min(1),
  message: z.string(),
  retryable: z.boolean().default(false),
  details: z.unknown().optional(),
});
/** The shape of an error on the bus, over HTTP and in stored rows. */
export type ErrorShape = z.infer<typeof ErrorShape>;

/** Options of a {@link TandemError}. */
export interface TandemErrorOptions {
  /** Whether the same work may succeed later (a consumer naks it with a delay); default false: permanent. */
  retryable?: boolean;
  /** The error this one wraps (kept in-process, never sent). */
  cause?: unknown;
  /** Structured facts about the failure, sent as `details`. */
  details?: unknown;
}

/**
 * A failure with a declared code; `retryable` says whether the same work may succeed later. The one
 * family of Tandem's errors: `ModelError`, `BudgetExceededError` and `MigrationError` extend it.
 */
export class TandemError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: TandemErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TandemError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }

  /**
   * A TandemError from a wire shape (`toErrorShape`'s output, a stored error). A code this version does
   * not declare becomes `INTERNAL.ERROR`, with the received code and details kept in `details`.
   */
  static fromShape(shape: ErrorShape, options: { cause?: unknown } = {}): TandemError {
    const common = { retryable: shape.retryable, cause: options.cause };
    if (isErrorCode(shape.code))
      return new TandemError(shape.code, shape.message, { ...common, details: shape.details });
    const details =
      shape.details === undefined
        ? { receivedCode: shape.code }
        : { receivedCode: shape.code, details: shape.details };
    return new TandemError(ErrorCodes.INTERNAL, shape.message, { ...common, details });
  }

  /** The wire form; never relies on `instanceof` at the receiving end. */
  toShape(): ErrorShape {
    return this.details === undefined
      ? { code: this.code, message: this.message, retryable: this.retryable }
      : { code: this.code, message: this.message, retryable: this.retryable, details: this.details };
  }
}

/**
 * Turns anything thrown into the wire error shape: a TandemError by its `toShape()`; any other object
 * with a dotted string `code` and a string `message` (an error from another copy of this package) by
 * those and `retryable === true`; everything else becomes INTERNAL.ERROR, retryable.
 */
export function toErrorShape(error: unknown): ErrorShape {
  if (error instanceof TandemError) return error.toShape();
  if (typeof error === 'object' && error !== null && 'code' in error && 'message' in error) {
    const { code, message } = error;
    const retryable = 'retryable' in error ? error.retryable : undefined;
    if (typeof code === 'string' && code.includes('.') && typeof message === 'string') {
      return { code, message, retryable: retryable === true };
    }
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: ErrorCodes.INTERNAL, message, retryable: true };
}
