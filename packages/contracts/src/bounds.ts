import { z } from 'zod';
import type { JsonValue } from './json.js';

/*
 * Size bounds of events (issue 12). nats-server refuses a message over its `max_payload` (1 MiB by
 * default), and an outbox row that cannot be published would block its publisher. So every event that
 * carries something a program or a model chose (output, a result value, a file listing, a task's result)
 * is cut to a bound well under that by the function that builds it; the whole value stays in Postgres
 * (a claim check) and the event says it was cut and where to fetch it.
 */

/** Largest `sandbox.run-completed` event, envelope included, in UTF-8 bytes of its JSON. */
export const SANDBOX_EVENT_MAX_BYTES = 256 * 1024;
/** Largest task outcome CloudEvent (`task.completed` / `task.failed` / `task.cancelled`), in bytes. */
export const TASK_OUTCOME_EVENT_MAX_BYTES = 256 * 1024;
/** Largest step value carried inline by `step.finished` and `task.replan-requested`, in JSON bytes. */
export const STEP_VALUE_EVENT_MAX_BYTES = 64 * 1024;

/** What each part of a `sandbox.run-completed` event may take at most (JSON-encoded UTF-8 bytes). */
export const SANDBOX_EVENT_PART_BYTES = {
  /** Each of stdout and stderr, as a JSON string (escapes counted). */
  stream: 48 * 1024,
  /** The program's result value, as JSON text; larger values are only stored (`valueTruncated`). */
  value: 64 * 1024,
  /** The files listing, as JSON; further entries are left out (`filesTruncated`). */
  files: 32 * 1024,
  /** The error message. */
  errorMessage: 4 * 1024,
} as const;

/** Longest answer text kept in a task outcome whose result was replaced by a marker. */
const MARKER_ANSWER_BYTES = 4 * 1024;
/** Longest error message kept in a task outcome event. */
const OUTCOME_ERROR_MESSAGE_BYTES = 8 * 1024;

/**
 * A value left out of an event because it is too large: how large it is (JSON bytes) and where to read
 * it over HTTP. Stored form on the wire: renaming a field breaks consumers.
 */
export const TruncatedValue = z.object({
  truncated: z.literal(true),
  bytes: z.number().int().nonnegative(),
  href: z.string(),
});
/** A value left out of an event because it is too large. */
export type TruncatedValue = z.infer<typeof TruncatedValue>;

/** The HTTP route that returns a task with its whole result (`GET /v1/tasks/:id`). */
export function taskHref(taskId: string): string {
  return `/v1/tasks/${taskId}`;
}

/** UTF-8 bytes of a value's JSON text (a lone surrogate counts as its 6-byte escape). */
export function jsonByteLength(value: unknown): number {
  const text = JSON.stringify(value ?? null);
  return Buffer.byteLength(text, 'utf8');
}

/** Bytes one UTF-16 unit takes inside a JSON string (escapes included); a pair counts on its high half. */
function escapedUnitBytes(text: string, index: number): number {
  const code = text.charCodeAt(index);
  if (code === 0x22 || code === 0x5c) return 2;
  if (code < 0x20)
    return code === 0x08 || code === 0x09 || code === 0x0a || code === 0x0c || code === 0x0d ? 2 : 6;
  if (code < 0x80) return 1;
  if (code < 0x800) return 2;
  if (code >= 0xd800 && code <= 0xdbff) {
    const next = text.charCodeAt(index + 1);
    return next >= 0xdc00 && next <= 0xdfff ? 4 : 6;
  }
  if (code >= 0xdc00 && code <= 0xdfff) return 6;
  return 3;
}

/**
 * The longest prefix of `text` whose JSON string (quotes and escapes included) takes at most `maxBytes`
 * UTF-8 bytes; never splits a surrogate pair. Returns the text itself when it fits.
 */
export function truncateJsonString(text: string, maxBytes: number): { text: string; truncated: boolean } {
  // Fast path: every unit is at most 6 bytes escaped.
  if (text.length * 6 + 2 <= maxBytes) return { text, truncated: false };
  let bytes = 2;
  let index = 0;
  while (index < text.length) {
    const unit = escapedUnitBytes(text, index);
    const pair = unit === 4;
    if (bytes + unit > maxBytes) return { text: text.slice(0, index), truncated: true };
    bytes += unit;
    index += pair ? 2 : 1;
  }
  return { text, truncated: false };
}

/** Like {@link truncateJsonString}, but keeps the end of the text (where a traceback is). */
export function truncateJsonStringTail(text: string, maxBytes: number): { text: string; truncated: boolean } {
  if (text.length * 6 + 2 <= maxBytes) return { text, truncated: false };
  let bytes = 2;
  let start = text.length;
  while (start > 0) {
    let index = start - 1;
    const code = text.charCodeAt(index);
    // The low half of a pair: measure the pair from its high half.
    if (code >= 0xdc00 && code <= 0xdfff && index > 0) {
      const high = text.charCodeAt(index - 1);
      if (high >= 0xd800 && high <= 0xdbff) index -= 1;
    }
    const unit = escapedUnitBytes(text, index);
    if (bytes + unit > maxBytes) return { text: text.slice(start), truncated: true };
    bytes += unit;
    start = index;
  }
  return { text, truncated: false };
}

/** Data of a `sandbox.run-completed` event before bounding (`value` as the program gave it). */
export interface SandboxEventParts {
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  value: JsonValue | null;
  errorMessage: string | null;
  files: Array<{ path: string; size: number; deleted: boolean }>;
  filesTruncated: boolean;
}

/** The same parts cut to {@link SANDBOX_EVENT_PART_BYTES}, with what was cut said. */
export interface BoundedSandboxEventParts extends SandboxEventParts {
  /** The value was left out of the event (it is stored with the run): read it by `runId`. */
  valueTruncated: boolean;
  /** Size of the whole value's JSON, when it was left out. */
  valueBytes?: number;
  /** Lengths (UTF-16 units) of the stored stdout and stderr, when the event carries less. */
  stdoutLength?: number;
  stderrLength?: number;
}

/**
 * Cuts the parts of a sandbox result that a program controls to the event's budget: stdout to its first
 * and stderr to its last {@link SANDBOX_EVENT_PART_BYTES.stream} bytes, a larger value left out (`valueTruncated`), the
 * files listing to its budget (`filesTruncated`), the error message to its budget. What was cut is
 * still in the stored run. With the envelope's fixed fields this keeps the event under
 * {@link SANDBOX_EVENT_MAX_BYTES} (asserted in the contracts tests for the worst case).
 */
export function boundSandboxEventParts(parts: SandboxEventParts): BoundedSandboxEventParts {
  const stdout = truncateJsonString(parts.stdout, SANDBOX_EVENT_PART_BYTES.stream);
  // The end of stderr is kept: that is where a program's traceback is.
  const stderr = truncateJsonStringTail(parts.stderr, SANDBOX_EVENT_PART_BYTES.stream);
  const valueBytes = jsonByteLength(parts.value);
  const valueTruncated = valueBytes > SANDBOX_EVENT_PART_BYTES.value;
  const files: SandboxEventParts['files'] = [];
  let filesBytes = 2;
  let filesTruncated = parts.filesTruncated;
  for (const file of parts.files) {
    const bytes = jsonByteLength(file) + 1;
    if (filesBytes + bytes > SANDBOX_EVENT_PART_BYTES.files) {
      filesTruncated = true;
      break;
    }
    filesBytes += bytes;
    files.push(file);
  }
  const errorMessage =
    parts.errorMessage === null
      ? null
      : truncateJsonString(parts.errorMessage, SANDBOX_EVENT_PART_BYTES.errorMessage).text;
  return {
    stdout: stdout.text,
    stderr: stderr.text,
    stdoutTruncated: parts.stdoutTruncated || stdout.truncated,
    stderrTruncated: parts.stderrTruncated || stderr.truncated,
    ...(stdout.truncated ? { stdoutLength: parts.stdout.length } : {}),
    ...(stderr.truncated ? { stderrLength: parts.stderr.length } : {}),
    value: valueTruncated ? null : parts.value,
    valueTruncated,
    ...(valueTruncated ? { valueBytes } : {}),
    errorMessage,
    files,
    filesTruncated,
  };
}

/**
 * A step value as `step.finished` and `task.replan-requested` carry it: the value itself, or a
 * {@link TruncatedValue} marker (pointing at the task) when its JSON is over
 * {@link STEP_VALUE_EVENT_MAX_BYTES}. The step's stored result keeps the whole value.
 */
export function boundStepValue(value: JsonValue | null, taskId: string): JsonValue | null {
  const bytes = jsonByteLength(value);
  if (bytes <= STEP_VALUE_EVENT_MAX_BYTES) return value;
  return { truncated: true, bytes, href: taskHref(taskId) };
}

/** A task's result as `tandem.task.completed` carries it (see `TaskCompletedData`). */
export interface TaskResultParts {
  answer: string;
  steps: Array<{ id: string; tool: string; value?: JsonValue }>;
}

/** A task result replaced by a marker: the marker's fields beside a cut answer and the steps without values. */
export type BoundedTaskResult = TaskResultParts & Partial<TruncatedValue>;

/** Room left in an outcome event for its result, after the envelope and the other data fields. */
const TASK_RESULT_INLINE_BYTES = TASK_OUTCOME_EVENT_MAX_BYTES - 32 * 1024;

/**
 * A task result for its outcome event: the result itself when its JSON fits in the event, else a typed
 * marker (`truncated: true`, `bytes`, `href`: `GET /v1/tasks/:id` returns the whole result) that keeps
 * the answer's first 4 KiB and each step's id and tool, so it still reads as a result.
 */
export function boundTaskResult(result: TaskResultParts, taskId: string): BoundedTaskResult {
  const bytes = jsonByteLength(result);
  if (bytes <= TASK_RESULT_INLINE_BYTES) return result;
  return {
    answer: truncateJsonString(result.answer, MARKER_ANSWER_BYTES).text,
    steps: result.steps.map((step) => ({ id: step.id, tool: step.tool })),
    truncated: true,
    bytes,
    href: taskHref(taskId),
  };
}

/**
 * An error as a task outcome event carries it: the message cut to 8 KiB, and `details` replaced by a
 * {@link TruncatedValue} marker when their JSON is over 64 KiB (the stored task keeps them).
 */
export function boundOutcomeError<T extends { message: string; details?: unknown }>(
  error: T,
  taskId: string,
): T {
  const message = truncateJsonString(error.message, OUTCOME_ERROR_MESSAGE_BYTES).text;
  if (error.details === undefined) return { ...error, message };
  const bytes = jsonByteLength(error.details);
  if (bytes <= STEP_VALUE_EVENT_MAX_BYTES) return { ...error, message };
  return { ...error, message, details: { truncated: true, bytes, href: taskHref(taskId) } };
}
