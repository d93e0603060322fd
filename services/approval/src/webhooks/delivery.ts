import { createHash, randomUUID } from 'node:crypto';
import { JsonValue, type ApproverWebhookType } from '@tandem/contracts';
import {
  claimDueWebhookDeliveries,
  insertWebhookDeliveries,
  parseStored,
  recordWebhookAttempt,
  type ClaimedWebhookDelivery,
  type Db,
  type Tx,
} from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { signWebhook } from '@tandem/webhooks';

/*
 * Outgoing webhooks to approvers (Standard Webhooks). Rows of `WebhookDelivery` are written in the
 * transaction that decides to notify (see `deliveriesFor`); the delivery loop sends them afterwards, so
 * no transaction stays open across an HTTP call and a notification is never lost to a crash between
 * the decision and the send. Delivery is at least once: receivers deduplicate by `webhook-id`, which is
 * the same on every retry of one delivery.
 */

/** A receiver of approver webhooks, from the policy: its name, URL, the groups it serves and its secrets. */
export interface WebhookEndpoint {
  name: string;
  url: string;
  /** Approver groups it is notified for; empty: every group. */
  groups: readonly string[];
  /** `whsec_` secrets; two during a rotation (every request carries one signature per secret). */
  secrets: readonly string[];
}

/** A `WebhookDelivery` row to insert (in the caller's transaction; ignore conflicts on (webhookId, url)). */
export interface NewWebhookDelivery {
  id: string;
  webhookId: string;
  url: string;
  event: ApproverWebhookType;
  payload: JsonValue;
  status: 'pending';
  attempts: 0;
  nextAttemptAt: Date;
  endpoint: string;
  approvalId: string;
}

/** What to notify: the body, for whom, and what makes this notification distinct from the approval's others. */
export interface DeliveriesForInput {
  endpoints: readonly WebhookEndpoint[];
  /** The approver group notified; null: every endpoint. */
  group: string | null;
  /** The webhook type, e.g. `approval.requested`. */
  type: ApproverWebhookType;
  approvalId: string;
  /** Distinguishes notifications of one approval and type (e.g. `escalated:1`, `reminder:0`). */
  discriminator: string;
  /** The full JSON body (`{ type, timestamp, data }`). */
  payload: unknown;
  now: Date;
}

/**
 * The delivery rows of one notification: one per endpoint serving `group` (every endpoint when it is
 * null; an endpoint without groups serves every group), at most one per URL. The webhook id is derived
 * from (approvalId, type, discriminator), so a handler that runs twice for one event queues rows that
 * conflict on (webhookId, url) instead of notifying twice. Throws a TypeError for a payload that is not
 * JSON.
 */
export function deliveriesFor(input: DeliveriesForInput): NewWebhookDelivery[] {
  const payload = toInputJson(input.payload);
  const webhookId = webhookIdFor(input.approvalId, input.type, input.discriminator);
  const urls = new Set<string>();
  const rows: NewWebhookDelivery[] = [];
  for (const endpoint of input.endpoints) {
    const serves =
      input.group === null || endpoint.groups.length === 0 || endpoint.groups.includes(input.group);
    if (!serves || urls.has(endpoint.url)) continue;
    urls.add(endpoint.url);
    rows.push({
      id: randomUUID(),
      webhookId,
      url: endpoint.url,
      event: input.type,
      payload,
      status: 'pending',
      attempts: 0,
      nextAttemptAt: input.now,
      endpoint: endpoint.name,
      approvalId: input.approvalId,
    });
  }
  return rows;
}

/**
 * Queues the rows of {@link deliveriesFor} in the caller's transaction; a row whose (webhookId, url) is
 * queued already is skipped. Returns how many were queued.
 */
export async function storeDeliveries(tx: Tx, rows: readonly NewWebhookDelivery[]): Promise<number> {
  return insertWebhookDeliveries(
    tx,
    rows.map((row) => ({
      id: row.id,
      webhookId: row.webhookId,
      url: row.url,
      event: row.event,
      payload: row.payload,
      endpoint: row.endpoint,
      approvalId: row.approvalId,
      at: row.nextAttemptAt,
    })),
  );
}

/** The Standard Webhooks message id of one notification: `msg_` + 32 hex digits of a hash of its identity. */
export function webhookIdFor(approvalId: string, type: string, discriminator: string): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([approvalId, type, discriminator]))
    .digest('hex');
  return `msg_${digest.slice(0, 32)}`;
}

/**
 * Waits after the 1st, 2nd, ... failed attempt; after the last one the delivery is failed (eight
 * attempts over about 4.5 hours). Each wait varies by ±10% so that receivers coming back are not hit by
 * every retry at once.
 */
export const RETRY_SCHEDULE_MS: readonly number[] = [
  5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 10_800_000,
];

/** How an attempt ended: sent, to be retried, or given up. */
export type DeliveryResult = 'delivered' | 'retry' | 'failed';

/** What the delivery loop needs. */
export interface DeliveryLoopDeps {
  db: Db;
  /** The configured endpoints, or a function returning the current ones (a reloaded policy). */
  endpoints: readonly WebhookEndpoint[] | (() => readonly WebhookEndpoint[]);
  log: Log;
  /** Poll interval (default 1000 ms); `kick()` starts a round at once. */
  intervalMs?: number;
  /** Timeout of one request, connection to last byte (default 10 000 ms). */
  timeoutMs?: number;
  /** Rows claimed at a time (default 20); they are sent concurrently. */
  batch?: number;
  /** Waits between attempts (default {@link RETRY_SCHEDULE_MS}). */
  retryScheduleMs?: readonly number[];
  /** Called after each attempt is recorded (metrics). */
  onResult?: (result: DeliveryResult) => void;
  now?: () => Date;
}

/** A running delivery loop. */
export interface DeliveryLoop {
  /** Starts a round now (after rows were queued); a round already running is followed by another. */
  kick(): void;
  /** Stops polling and waits for the round in flight (its requests end by their timeout at the latest). */
  stop(): Promise<void>;
}

const DEFAULT_INTERVAL_MS = 1000;
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_BATCH = 20;
/** A claim outlives the request by this much, to cover recording the result. */
const LEASE_SLACK_MS = 5000;
const JITTER = 0.1;
const MAX_ERROR_LENGTH = 500;
const MAX_RESPONSE_SNIPPET = 200;

/** A claimed delivery with its payload parsed. */
type ClaimedRow = Omit<ClaimedWebhookDelivery, 'payload'> & { payload: JsonValue };

/** The outcome of one attempt, as it is recorded. */
interface Outcome {
  result: DeliveryResult;
  /** Whether a request was made (an endpoint missing from the config is failed without one). */
  attempted: boolean;
  status: number | null;
  error: string | null;
}

/**
 * Sends due `WebhookDelivery` rows every `intervalMs` and on `kick()`. Rows are claimed with
 * skip-locked row locks (claimDueWebhookDeliveries in @tandem/db) by a statement that also moves their
 * `nextAttemptAt` past the request's timeout — a lease: replicas polling one database never send one attempt at the same time, and a
 * replica that dies mid-request leaves its rows to be retried when the lease runs out. Each row is
 * POSTed with its payload serialized once and signed with the endpoint's current secrets; redirects are
 * not followed. 2xx: delivered; 410: failed at once (the receiver asks us to stop); anything else: retried
 * on the schedule, then failed. Errors of a round are logged and the next round goes on.
 */
export function createDeliveryLoop(deps: DeliveryLoopDeps): DeliveryLoop {
  const intervalMs = deps.intervalMs ?? DEFAULT_INTERVAL_MS;
  const timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const batch = deps.batch ?? DEFAULT_BATCH;
  const schedule = deps.retryScheduleMs ?? RETRY_SCHEDULE_MS;
  const now = deps.now ?? (() => new Date());
  const configured = deps.endpoints;
  const endpoints = typeof configured === 'function' ? configured : () => configured;

  let stopped = false;
  let current: Promise<void> | undefined;
  let kickedWhileRunning = false;

  async function claim(): Promise<ClaimedRow[]> {
    const at = now();
    // One statement, so the claim is its own short transaction: the row locks last only until the
    // lease is written, never across the HTTP request.
    const rows = await claimDueWebhookDeliveries(deps.db, {
      now: at,
      limit: batch,
      leaseUntil: new Date(at.getTime() + timeoutMs + LEASE_SLACK_MS),
    });
    return rows.map((row) => ({
      ...row,
      payload: parseStored(JsonValue, row.payload, `WebhookDelivery.payload of ${row.id}`),
    }));
  }

  async function deliver(row: ClaimedRow): Promise<void> {
    const outcome = await attempt(row);
    const attempts = row.attempts + (outcome.attempted ? 1 : 0);
    let result = outcome.result;
    let nextAttemptAt: Date | null = null;
    if (result === 'retry') {
      const wait = schedule[attempts - 1];
      if (wait === undefined) result = 'failed';
      else nextAttemptAt = new Date(now().getTime() + jittered(wait));
    }
    const status = result === 'retry' ? 'pending' : result;
    // Only the holder of this attempt records it: if the lease ran out and another replica recorded
    // the attempt first, this result is dropped rather than counted twice.
    const recorded = await recordWebhookAttempt(deps.db, {
      id: row.id,
      status,
      attempts,
      attemptsBefore: row.attempts,
      lastStatus: outcome.status,
      lastError: outcome.error,
      nextAttemptAt,
    });
    const context = {
      deliveryId: row.id,
      webhookId: row.webhookId,
      endpoint: row.endpoint,
      event: row.event,
      attempts,
      status: outcome.status,
    };
    if (!recorded) {
      deps.log.warn(context, 'webhook delivery was recorded by another worker first; result dropped');
      return;
    }
    if (result === 'delivered') deps.log.debug(context, 'webhook delivered');
    else if (result === 'retry') {
      deps.log.warn(
        { ...context, error: outcome.error, nextAttemptAt },
        'webhook delivery failed; will retry',
      );
    } else deps.log.error({ ...context, error: outcome.error }, 'webhook delivery failed for good');
    deps.onResult?.(result);
  }

  async function attempt(row: ClaimedRow): Promise<Outcome> {
    const endpoint = endpoints().find((candidate) =>
      row.endpoint === null ? candidate.url === row.url : candidate.name === row.endpoint,
    );
    if (endpoint === undefined) {
      return failedWithoutRequest(`endpoint ${row.endpoint ?? '(unnamed)'} is no longer configured`);
    }
    if (endpoint.url !== row.url) {
      // The URL was changed in the configuration: the old one may belong to someone else by now.
      return failedWithoutRequest(`endpoint ${endpoint.name} now has another url`);
    }
    const body = JSON.stringify(row.payload);
    let headers: Record<string, string>;
    try {
      headers = signWebhook({ id: row.webhookId, timestamp: now(), body, secrets: endpoint.secrets });
    } catch (error) {
      return failedWithoutRequest(`cannot sign for endpoint ${endpoint.name}: ${messageOf(error)}`);
    }
    try {
      const response = await fetch(row.url, {
        method: 'POST',
        body,
        headers: { ...headers, 'content-type': 'application/json', 'user-agent': 'tandem-webhooks/1' },
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (response.ok) {
        await response.body?.cancel().catch(() => undefined);
        return { result: 'delivered', attempted: true, status: response.status, error: null };
      }
      const snippet = await responseSnippet(response);
      const error = redact(`HTTP ${response.status}${snippet === '' ? '' : `: ${snippet}`}`, row.url);
      return {
        result: response.status === 410 ? 'failed' : 'retry',
        attempted: true,
        status: response.status,
        error,
      };
    } catch (error) {
      return { result: 'retry', attempted: true, status: null, error: redact(messageOf(error), row.url) };
    }
  }

  async function round(): Promise<void> {
    do {
      kickedWhileRunning = false;
      try {
        for (;;) {
          const rows = await claim();
          if (rows.length === 0) break;
          const settled = await Promise.allSettled(rows.map(deliver));
          for (const [index, outcome] of settled.entries()) {
            if (outcome.status === 'rejected') {
              deps.log.error(
                { err: outcome.reason, deliveryId: rows[index]?.id },
                'could not record a webhook delivery',
              );
            }
          }
          if (rows.length < batch || stopped) break;
        }
      } catch (error) {
        deps.log.error({ err: error }, 'webhook delivery round failed; will retry');
        // Wait for the next tick instead of spinning on kicks while the database is unreachable.
        return;
      }
    } while (kickedWhileRunning && !stopped);
  }

  function kick(): void {
    if (stopped) return;
    if (current !== undefined) {
      kickedWhileRunning = true;
      return;
    }
    current = round().finally(() => {
      current = undefined;
    });
  }

  const timer = setInterval(kick, intervalMs);
  // The service's server and bus keep the process alive; the poll timer alone must not.
  timer.unref();
  kick();

  return {
    kick,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await current;
    },
  };
}

function failedWithoutRequest(error: string): Outcome {
  return { result: 'failed', attempted: false, status: null, error };
}

function jittered(ms: number): number {
  return Math.round(ms * (1 + (Math.random() * 2 - 1) * JITTER));
}

/** The start of an error response, as text on one line; empty if it cannot be read in time. */
async function responseSnippet(response: Response): Promise<string> {
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    while (length < MAX_RESPONSE_SNIPPET * 4) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      length += value.length;
    }
  } catch {
    // A body that fails or times out adds nothing to the status.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const text = Buffer.concat(chunks).toString('utf8').replace(/\s+/g, ' ').trim();
  return text.length > MAX_RESPONSE_SNIPPET ? `${text.slice(0, MAX_RESPONSE_SNIPPET)}…` : text;
}

/** An error's message with its causes (fetch says only "fetch failed"; the reason is in `cause`). */
function messageOf(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth += 1) {
    parts.push(current instanceof Error ? current.message : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(': ');
}

/**
 * Error text as stored and logged: without the URL (webhook URLs often carry a token in their path or
 * query) and at most 500 characters.
 */
function redact(text: string, url: string): string {
  const safe = url === '' ? text : text.split(url).join('<url>');
  return safe.length > MAX_ERROR_LENGTH ? `${safe.slice(0, MAX_ERROR_LENGTH - 1)}…` : safe;
}

/** The payload as the JSON it is stored as; throws a TypeError for anything JSON cannot hold. */
function toInputJson(value: unknown): JsonValue {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new TypeError(`a webhook payload must be JSON: ${messageOf(error)}`, { cause: error });
  }
  if (text === undefined) throw new TypeError('a webhook payload must be JSON');
  const parsed: unknown = JSON.parse(text);
  const json = jsonOf(parsed);
  if (json === null) throw new TypeError('a webhook payload must not be null');
  return json;
}

/** Rebuilds parsed JSON as a JSON value (no cast: every branch is checked). */
function jsonOf(value: unknown): JsonValue {
  if (value === null) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map((item: unknown) => jsonOf(item));
  if (typeof value === 'object') {
    const object: Record<string, JsonValue> = {};
    for (const [key, item] of Object.entries(value)) object[key] = jsonOf(item);
    return object;
  }
  throw new TypeError(`a webhook payload must be JSON, not ${typeof value}`);
}
