import { z } from 'zod';
import { ErrorShape } from './errors.js';
import { JsonValue } from './json.js';

/**
 * CloudEvents 1.0 `type` values Tandem reads and writes.
 * Wire names (public contract): renaming one breaks every integrated system.
 */
export const CloudEventTypes = {
  taskRequested: 'tandem.task.requested',
  taskCompleted: 'tandem.task.completed',
  taskFailed: 'tandem.task.failed',
  taskCancelled: 'tandem.task.cancelled',
  taskCancelRequested: 'tandem.task.cancel-requested',
} as const;

/** Subject suffixes of the public CloudEvents (public contract, fixed). */
export const PublicSubjects = {
  taskRequested: 'task.requested.v1',
  taskCompleted: 'task.completed.v1',
  taskFailed: 'task.failed.v1',
  taskCancelled: 'task.cancelled.v1',
  /** Fixed: a submitter (or Tandem's own `POST /v1/tasks/:id/cancel`) asks to cancel a task. */
  taskCancelRequested: 'task.cancel-requested.v1',
} as const;

/**
 * The `source` under which HTTP submissions are stored; CloudEvents may not use it, so an HTTP
 * Idempotency-Key never collides with another system's event id. Wire value: renaming it splits
 * stored idempotency keys.
 */
export const HTTP_TASK_SOURCE = 'urn:tandem:http';

/** Per-task limits on model use; exceeding one stops the task with `BUDGET.EXCEEDED`. */
export const TaskBudget = z.strictObject({
  maxTokens: z.number().int().positive().optional(),
  maxCostUsd: z.number().positive().optional(),
  maxModelCalls: z.number().int().positive().optional(),
});
/** Per-task limits on model use. */
export type TaskBudget = z.infer<typeof TaskBudget>;

const ModelName = z.string().min(1).max(200);

/** Which models a task asks for: a tier (`fast`, `strong`, ...) and/or a model per role. */
export const TaskModelPreference = z.strictObject({
  tier: z
    .string()
    .min(1)
    .max(50)
    .regex(/^[a-z0-9_-]+$/, 'a tier is lowercase letters, digits, _ or -')
    .optional(),
  planning: ModelName.optional(),
  code: ModelName.optional(),
});
/** Which models a task asks for. */
export type TaskModelPreference = z.infer<typeof TaskModelPreference>;

/** `data` of a `tandem.task.requested` event: unknown fields are rejected. */
export const TaskRequestedData = z.strictObject({
  goal: z.string().trim().min(1).max(20_000),
  input: JsonValue.optional(),
  kind: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[A-Za-z0-9_.:-]+$/, 'kind may contain letters, digits, and _ . : -')
    .optional(),
  agentId: z.string().min(1).max(200).optional(),
  budget: TaskBudget.optional(),
  /** An instant (RFC 3339 with offset); past it the task fails with `TASK.DEADLINE_EXCEEDED`. */
  deadline: z.iso.datetime({ offset: true }).optional(),
  models: TaskModelPreference.optional(),
});
/** `data` of a `tandem.task.requested` event. */
export type TaskRequestedData = z.infer<typeof TaskRequestedData>;

const attributeName = /^[a-z0-9]{1,20}$/;

/** Context attributes shared by every structured-mode CloudEvent (extension attributes allowed). */
const cloudEventBase = {
  specversion: z.literal('1.0'),
  id: z.string().min(1).max(500),
  source: z.string().min(1).max(1000),
  datacontenttype: z.literal('application/json').optional(),
  dataschema: z.string().optional(),
  subject: z.string().optional(),
  time: z.iso.datetime({ offset: true }).optional(),
};

const extensionValue = z.union([z.string(), z.number(), z.boolean()]);

function checkExtensions(event: Record<string, unknown>, context: z.RefinementCtx): void {
  for (const [key, value] of Object.entries(event)) {
    if (key in cloudEventBase || key === 'type' || key === 'data') continue;
    if (key === 'data_base64') {
      context.addIssue({
        code: 'custom',
        path: [key],
        message: 'binary data (data_base64) is not accepted; send JSON data',
      });
    } else if (!attributeName.test(key)) {
      context.addIssue({
        code: 'custom',
        path: [key],
        message: 'extension attribute names are 1-20 lowercase letters or digits',
      });
    } else if (!extensionValue.safeParse(value).success) {
      context.addIssue({
        code: 'custom',
        path: [key],
        message: 'extension attribute values must be strings, numbers or booleans',
      });
    }
  }
}

/** A structured-mode CloudEvent requesting a task, published on `<prefix>.task.requested.v1`. */
export const TaskRequestedCloudEvent = z
  .looseObject({
    ...cloudEventBase,
    type: z.literal(CloudEventTypes.taskRequested),
    data: TaskRequestedData,
  })
  .superRefine(checkExtensions);
/** A structured-mode CloudEvent requesting a task. */
export type TaskRequestedCloudEvent = z.infer<typeof TaskRequestedCloudEvent>;

/**
 * Who asked for a task: the submitting CloudEvent's source and id, or the HTTP idempotency key with the
 * token that sent it (`tokenId`, optional: absent on tasks stored before keys were scoped per token).
 * Two tokens may send the same key: `tokenId` tells their tasks apart.
 */
export const TaskRequestRef = z.union([
  z.strictObject({ source: z.string(), id: z.string() }),
  z.strictObject({ idempotencyKey: z.string().nullable(), tokenId: z.uuid().optional() }),
]);
/** Who asked for a task. */
export type TaskRequestRef = z.infer<typeof TaskRequestRef>;

/**
 * `data` of `tandem.task.completed`. A result whose JSON is too large for the event (see
 * `TASK_OUTCOME_EVENT_MAX_BYTES`) arrives as a marker: `truncated: true`, its size in `bytes` and `href`
 * (`GET /v1/tasks/:id`, which returns the whole result), with the answer's first 4 KiB and the steps
 * without values, so it still reads as a result.
 */
export const TaskCompletedData = z.object({
  taskId: z.uuid(),
  request: TaskRequestRef,
  status: z.literal('completed'),
  result: z.object({
    answer: z.string(),
    steps: z.array(z.object({ id: z.string(), tool: z.string(), value: JsonValue.optional() })),
    truncated: z.literal(true).optional(),
    bytes: z.number().int().nonnegative().optional(),
    href: z.string().optional(),
  }),
  kind: z.string().optional(),
  agentId: z.string().nullable().optional(),
  planVersion: z.number().int().optional(),
  tools: z.array(z.string()).optional(),
});
/** `data` of `tandem.task.completed`. */
export type TaskCompletedData = z.infer<typeof TaskCompletedData>;

/** `data` of `tandem.task.failed`. */
export const TaskFailedData = z.object({
  taskId: z.uuid(),
  request: TaskRequestRef,
  status: z.literal('failed'),
  error: ErrorShape.extend({ stepId: z.string().optional() }),
  kind: z.string().optional(),
  agentId: z.string().nullable().optional(),
  planVersion: z.number().int().optional(),
  tools: z.array(z.string()).optional(),
});
/** `data` of `tandem.task.failed`. */
export type TaskFailedData = z.infer<typeof TaskFailedData>;

const outcomeBase = {
  specversion: z.literal('1.0'),
  id: z.string().min(1),
  source: z.string().min(1),
  time: z.iso.datetime({ offset: true }),
  datacontenttype: z.literal('application/json'),
  subject: z.string(),
  correlationid: z.string().optional(),
};

/** The CloudEvent published on `<prefix>.task.completed.v1`. */
export const TaskCompletedCloudEvent = z.object({
  ...outcomeBase,
  type: z.literal(CloudEventTypes.taskCompleted),
  data: TaskCompletedData,
});
/** The CloudEvent published on `<prefix>.task.completed.v1`. */
export type TaskCompletedCloudEvent = z.infer<typeof TaskCompletedCloudEvent>;

/** The CloudEvent published on `<prefix>.task.failed.v1`. */
export const TaskFailedCloudEvent = z.object({
  ...outcomeBase,
  type: z.literal(CloudEventTypes.taskFailed),
  data: TaskFailedData,
});
/** The CloudEvent published on `<prefix>.task.failed.v1`. */
export type TaskFailedCloudEvent = z.infer<typeof TaskFailedCloudEvent>;

/** `data` of `tandem.task.cancelled`. */
export const TaskCancelledData = z.object({
  taskId: z.uuid(),
  request: TaskRequestRef,
  status: z.literal('cancelled'),
  reason: z.string().nullable(),
  requestedBy: z.string().nullable().optional(),
  kind: z.string().optional(),
  agentId: z.string().nullable().optional(),
  planVersion: z.number().int().optional(),
  tools: z.array(z.string()).optional(),
});
/** `data` of `tandem.task.cancelled`. */
export type TaskCancelledData = z.infer<typeof TaskCancelledData>;

/** The CloudEvent published on `<prefix>.task.cancelled.v1`. */
export const TaskCancelledCloudEvent = z.object({
  ...outcomeBase,
  type: z.literal(CloudEventTypes.taskCancelled),
  data: TaskCancelledData,
});
/** The CloudEvent published on `<prefix>.task.cancelled.v1`. */
export type TaskCancelledCloudEvent = z.infer<typeof TaskCancelledCloudEvent>;

/**
 * `data` of `tandem.task.cancel-requested`: the task by Tandem's id, or by the CloudEvent that
 * requested it (`source` + `id`), so a submitter that never saw the task id can still cancel it.
 */
export const TaskCancelRequestedData = z
  .strictObject({
    taskId: z.uuid().optional(),
    request: z
      .strictObject({ source: z.string().min(1).max(1000), id: z.string().min(1).max(500) })
      .optional(),
    reason: z.string().max(2000).optional(),
    /** Who asks: from Tandem's own HTTP route the authenticated token (`token:<ApiToken.id>`). */
    requestedBy: z.string().max(200).optional(),
    /** Optional, added beside the fixed fields: the name the HTTP caller gave, a label beside `requestedBy`. */
    requestedByLabel: z.string().max(200).optional(),
  })
  .refine((data) => (data.taskId === undefined) !== (data.request === undefined), {
    message: 'give exactly one of taskId or request',
  });
/** `data` of `tandem.task.cancel-requested`. */
export type TaskCancelRequestedData = z.infer<typeof TaskCancelRequestedData>;

/** A structured-mode CloudEvent asking to cancel a task, on `<prefix>.task.cancel-requested.v1` (fixed). */
export const TaskCancelRequestedCloudEvent = z
  .looseObject({
    ...cloudEventBase,
    type: z.literal(CloudEventTypes.taskCancelRequested),
    data: TaskCancelRequestedData,
  })
  .superRefine(checkExtensions);
/** A structured-mode CloudEvent asking to cancel a task. */
export type TaskCancelRequestedCloudEvent = z.infer<typeof TaskCancelRequestedCloudEvent>;

/** Any task outcome. */
export const TaskOutcomeCloudEvent = z.discriminatedUnion('type', [
  TaskCompletedCloudEvent,
  TaskFailedCloudEvent,
  TaskCancelledCloudEvent,
]);
/** Any task outcome. */
export type TaskOutcomeCloudEvent = z.infer<typeof TaskOutcomeCloudEvent>;

// `token:<uuid>:` before the key of an HTTP task: the token whose key it is. Stored form (wire value).
const HTTP_KEY_SCOPE = /^token:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):/i;

/**
 * The stored `externalId` of an HTTP task: the submitting token's id, then the Idempotency-Key (or the
 * planner's `auto:<uuid>` when there was none), so each token has its own keys. Stored form: changing
 * it splits stored idempotency keys.
 */
export function httpTaskExternalId(tokenId: string, key: string): string {
  return `token:${tokenId}:${key}`;
}

/**
 * The parts of an HTTP task's stored `externalId`: the token whose key it is (null for rows stored
 * before keys were scoped per token) and the key as the client sent it (or `auto:<uuid>`).
 */
export function httpTaskKey(externalId: string): { tokenId: string | null; key: string } {
  const scoped = HTTP_KEY_SCOPE.exec(externalId);
  return scoped?.[1] === undefined
    ? { tokenId: null, key: externalId }
    : { tokenId: scoped[1], key: externalId.slice(scoped[0].length) };
}

/**
 * The request a stored task came from: HTTP submissions keep their Idempotency-Key (null when the
 * planner generated one, stored as `auto:<uuid>`) and the token that sent it, CloudEvent submissions
 * their source and id.
 */
export function taskRequestRef(stored: { source: string; externalId: string }): TaskRequestRef {
  if (stored.source !== HTTP_TASK_SOURCE) return { source: stored.source, id: stored.externalId };
  const { tokenId, key } = httpTaskKey(stored.externalId);
  const idempotencyKey = key.startsWith('auto:') ? null : key;
  return tokenId === null ? { idempotencyKey } : { idempotencyKey, tokenId };
}

/** What a task asks of one role's model (tier and/or model), or undefined when it asks nothing. */
export function modelPreferenceFor(
  preferences: TaskModelPreference | undefined,
  role: 'planning' | 'code',
): { tier?: string; model?: string } | undefined {
  if (!preferences) return undefined;
  const model = role === 'planning' ? preferences.planning : preferences.code;
  const out: { tier?: string; model?: string } = {};
  if (preferences.tier !== undefined) out.tier = preferences.tier;
  if (model !== undefined) out.model = model;
  return Object.keys(out).length > 0 ? out : undefined;
}
