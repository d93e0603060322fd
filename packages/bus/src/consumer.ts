import {
  AckPolicy,
  DeliverPolicy,
  ReplayPolicy,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import {
  DEFAULT_BUS_PAYLOAD_LIMITS,
  ErrorCodes,
  TandemError,
  consumerNameFor,
  scanJsonText,
  streamNameFor,
  subjectFor,
  type JsonTextLimits,
} from '@tandem/contracts';
import type { Logger } from 'pino';
import { resolveClaimCheck } from './claim-check.js';
import {
  maxDeliveriesAdvisorySubject,
  parseMaxDeliveriesAdvisory,
  writeDeadLetter,
  type DeadLetterSink,
} from './dead-letters.js';
import { MSG_ID_HEADER, fromNatsHeaders } from './headers.js';
import { checkProvisionedConsumer, ensureConsumer } from './provision.js';
import { formatIssues, type MessageSchema, type MessageSchemaResult } from './schema.js';
import { entityOfSuffix } from './streams.js';

/** Default `max_deliver` of a consumer. */
export const DEFAULT_MAX_DELIVER = 5;
/** Default ack wait of a consumer: 30 s. */
export const DEFAULT_ACK_WAIT_MS = 30_000;
/** Default longest time one message is heartbeated: 15 min. */
export const DEFAULT_MAX_WORKING_MS = 15 * 60_000;

const RESTART_DELAY_MS = 1_000;
const ADVISORY_RETRIES = 3;
/**
 * How long one pull request waits on the server for messages before it is renewed. Short, because a
 * request lost with a restarted server is noticed only by missed heartbeats (half of it).
 */
const FETCH_EXPIRES_MS = 5_000;
/** The shortest heartbeat interval (a guard for tiny ack waits in tests). */
const MIN_HEARTBEAT_MS = 100;

/**
 * How often a held message is reported `working()`: three times per ack wait, so one lost or late
 * heartbeat never lets the ack wait run out while the process is alive.
 */
export function heartbeatIntervalMs(ackWaitMs: number): number {
  return Math.max(MIN_HEARTBEAT_MS, Math.floor(ackWaitMs / 3));
}

/** What a handler gets beside the parsed message. */
export interface MessageContext {
  /** `messageId(parsed)`: the key a handler records in the inbox (`markProcessed`). */
  messageId: string;
  /** The JetStream consumer name (`<PREFIX>_<durable>`); plain consumers' inbox key. */
  consumer: string;
  /** The full subject the message was published on. */
  subject: string;
  /** The message's sequence in its stream. */
  streamSeq: number;
  /** 1 on the first delivery. */
  deliveryCount: number;
  /** The message's NATS headers (first value of each). */
  headers: Record<string, string>;
  /** The payload as JSON, before the schema parsed it (what a signature over the message covers). */
  json: unknown;
  /** A child logger carrying consumer, subject, streamSeq, messageId and correlationId. */
  log: Logger;
  /**
   * Tells JetStream the handler is still working, restarting the ack-wait timer. The framework already
   * does this every ackWait/3 while the handler runs; calling it is never needed, and harmless.
   */
  working(): void;
}

/** Options of `bus.consume`. */
export interface ConsumeOptions<T> {
  /** The durable name, e.g. `planner-task-accepted`; the consumer is `consumerNameFor(prefix, durable)`. */
  durable: string;
  /** The subject without the prefix, e.g. `task.accepted.v1`; its first token picks the stream. */
  subject: string;
  /** The message schema (a zod schema, e.g. an event definition's `envelope`). */
  schema: MessageSchema<T>;
  /** The idempotency key of a parsed message (usually the envelope id). */
  messageId: (message: T) => string;
  /**
   * Handles one message. Resolve to ack (after your transaction committed). Throw a non-retryable
   * TandemError (or any error with a string `code` and `retryable: false`) to dead-letter it; throw
   * anything else to have it redelivered after `nakDelayMs`.
   */
  handle: (message: T, context: MessageContext) => Promise<void>;
  /** Deliveries before the message is dead-lettered as `BUS.MAX_DELIVERIES` (default 5). */
  maxDeliver?: number;
  /**
   * How long JetStream waits for an ack before redelivering (default 30 s). Size it to recovery, not to
   * the work: the framework heartbeats (`working()`) every ackWait/3 for each message it holds, so a
   * live handler is never redelivered however long it runs, and a dead process's messages come back
   * after one ack wait.
   */
  ackWaitMs?: number;
  /**
   * How long the framework heartbeats one message (default 15 min). A handler still running after this
   * is taken for hung: the heartbeats stop, the message is redelivered after its ack wait and, after
   * `maxDeliver` such deliveries, dead-lettered as `BUS.MAX_DELIVERIES`.
   */
  maxWorkingMs?: number;
  /** Messages handled at once by this process (default 1: in stream order). */
  concurrency?: number;
  /**
   * Messages this process holds at most, handled or waiting for a handler slot (default: concurrency).
   * At least `concurrency`; every held message is heartbeated, and all come back one ack wait after
   * the process dies.
   */
  prefetch?: number;
  /** Delay before a failed message comes back (default: 1 s doubling per delivery, at most 60 s, +-20%). */
  nakDelayMs?: (deliveryCount: number) => number;
  /**
   * Size and depth checked on the raw payload before it is parsed (default `DEFAULT_BUS_PAYLOAD_LIMITS`:
   * 8 MiB, 64 levels). Over them the message is dead-lettered on its first delivery as
   * `BUS.PAYLOAD_TOO_LARGE` or `BUS.PAYLOAD_TOO_DEEP` and never reaches the schema or the handler.
   */
  payloadLimits?: JsonTextLimits;
}

/** A running consumer. */
export interface RunningConsumer {
  /** The JetStream consumer name. */
  readonly name: string;
  /** The stream it reads. */
  readonly stream: string;
  /** The full filter subject. */
  readonly subject: string;
  /**
   * Stops pulling, hands messages pulled but not started back to JetStream, waits for handlers in
   * flight to finish (and ack) and unsubscribes from the advisory. Safe to call more than once.
   */
  stop(): Promise<void>;
}

/** What a consumer needs from the bus. */
export interface ConsumerDeps extends DeadLetterSink {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  prefix: string;
  /** Consumers were created by the provisioner: check them instead of creating them (no rights to). */
  provisioned?: boolean;
}

/** The default backoff: 1 s, 2 s, 4 s, ... capped at 60 s, with +-20% jitter so replicas don't retry in step. */
export function defaultNakDelayMs(deliveryCount: number): number {
  const base = Math.min(1_000 * 2 ** Math.max(0, deliveryCount - 1), 60_000);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/**
 * Whether an error is V8's stack overflow. It comes back on every delivery of the same message, so it is
 * a permanent failure, not something to retry.
 */
export function isStackOverflow(error: unknown): boolean {
  return (
    error instanceof Error &&
    error.name === 'RangeError' &&
    error.message.includes('Maximum call stack size exceeded')
  );
}

/**
 * The code and message of a permanent failure, or null when the error should be retried. A stack
 * overflow is permanent as `BUS.STACK_OVERFLOW`. Duck-typed as well as by class: `instanceof` fails
 * across copies of the contracts package.
 */
export function permanentFailure(error: unknown): { code: string; message: string } | null {
  if (error instanceof TandemError)
    return error.retryable ? null : { code: error.code, message: error.message };
  if (isStackOverflow(error))
    return {
      code: ErrorCodes.BUS_STACK_OVERFLOW,
      message: `the stack overflowed while handling the message (${String(error)})`,
    };
  if (typeof error !== 'object' || error === null) return null;
  const code = 'code' in error ? error.code : undefined;
  const retryable = 'retryable' in error ? error.retryable : undefined;
  if (typeof code !== 'string' || code === '' || retryable !== false) return null;
  const message = 'message' in error && typeof error.message === 'string' ? error.message : String(error);
  return { code, message };
}

/** A payload read for its schema, or why it was refused (a dead-letter code and reason). */
export type PayloadReading = { ok: true; body: unknown } | { ok: false; code: string; reason: string };

/**
 * Reads a message payload without trusting it: size in bytes, strict UTF-8, then size and depth on the
 * raw text (`scanJsonText`, before any object is built), then JSON.parse. Each refusal has its own code:
 * `BUS.PAYLOAD_TOO_LARGE`, `BUS.UNPARSEABLE`, `BUS.PAYLOAD_TOO_DEEP`.
 */
export function readPayload(data: Uint8Array, limits: JsonTextLimits): PayloadReading {
  // The byte length is exact here: refuse before decoding anything.
  if (data.length > limits.maxBytes)
    return {
      ok: false,
      code: ErrorCodes.BUS_PAYLOAD_TOO_LARGE,
      reason: `payload is ${data.length} bytes; the limit is ${limits.maxBytes}`,
    };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { ok: false, code: ErrorCodes.BUS_UNPARSEABLE, reason: `not JSON: ${reason}` };
  }
  const scan = scanJsonText(text, limits);
  if (!scan.ok)
    return scan.problem === 'too_large'
      ? {
          ok: false,
          code: ErrorCodes.BUS_PAYLOAD_TOO_LARGE,
          reason: `payload is larger than ${scan.limit} bytes`,
        }
      : {
          ok: false,
          code: ErrorCodes.BUS_PAYLOAD_TOO_DEEP,
          reason: `payload nests more than ${scan.limit} levels deep (at offset ${scan.offset})`,
        };
  try {
    return { ok: true, body: JSON.parse(text) };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { ok: false, code: ErrorCodes.BUS_UNPARSEABLE, reason: `not JSON: ${reason}` };
  }
}

/** A schema parse that never throws: a schema that throws (a stack overflow included) is a refusal too. */
function safeSchemaParse<T>(
  schema: MessageSchema<T>,
  body: unknown,
): { ok: true; data: T } | { ok: false; code: string; reason: string } {
  let result: MessageSchemaResult<T>;
  try {
    result = schema.safeParse(body);
  } catch (error) {
    return isStackOverflow(error)
      ? {
          ok: false,
          code: ErrorCodes.BUS_STACK_OVERFLOW,
          reason: `the schema overflowed the stack (${String(error)})`,
        }
      : { ok: false, code: ErrorCodes.BUS_SCHEMA_INVALID, reason: `the schema threw: ${String(error)}` };
  }
  return result.success
    ? { ok: true, data: result.data }
    : { ok: false, code: ErrorCodes.BUS_SCHEMA_INVALID, reason: formatIssues(result.error.issues) };
}

/** Creates (or updates) the durable pull consumer and starts its consume loop. */
export async function startConsumer<T>(
  deps: ConsumerDeps,
  options: ConsumeOptions<T>,
): Promise<RunningConsumer> {
  const maxDeliver = options.maxDeliver ?? DEFAULT_MAX_DELIVER;
  const ackWaitMs = options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
  const maxWorkingMs = options.maxWorkingMs ?? DEFAULT_MAX_WORKING_MS;
  const concurrency = options.concurrency ?? 1;
  const prefetch = options.prefetch ?? concurrency;
  const nakDelayMs = options.nakDelayMs ?? defaultNakDelayMs;
  const payloadLimits = options.payloadLimits ?? DEFAULT_BUS_PAYLOAD_LIMITS;
  if (!Number.isInteger(maxDeliver) || maxDeliver < 1)
    throw new RangeError(`maxDeliver must be a positive integer, got ${maxDeliver}`);
  if (!Number.isInteger(ackWaitMs) || ackWaitMs < 1_000)
    throw new RangeError(`ackWaitMs must be an integer of at least 1000, got ${ackWaitMs}`);
  if (!Number.isInteger(maxWorkingMs) || maxWorkingMs < 1)
    throw new RangeError(`maxWorkingMs must be a positive integer, got ${maxWorkingMs}`);
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  if (!Number.isInteger(prefetch) || prefetch < concurrency)
    throw new RangeError(
      `prefetch must be an integer of at least concurrency (${concurrency}), got ${prefetch}`,
    );
  for (const [limit, value] of Object.entries(payloadLimits))
    if (!Number.isInteger(value) || value < 1)
      throw new RangeError(`payloadLimits.${limit} must be a positive integer, got ${value}`);

  const stream = streamNameFor(deps.prefix, entityOfSuffix(options.subject));
  const name = consumerNameFor(deps.prefix, options.durable);
  const filterSubject = subjectFor(deps.prefix, options.subject);
  const log = deps.log.child({ consumer: name });
  const sink: DeadLetterSink = { db: deps.db, log, onDeadLetter: deps.onDeadLetter };

  // Provisioned (a connection with credentials): check the consumer exists instead of creating it.
  const ensure: typeof ensureConsumer =
    deps.provisioned === true
      ? (jsm, on, config) => checkProvisionedConsumer(jsm, on, config, log)
      : ensureConsumer;
  await ensure(deps.jsm, stream, {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(ackWaitMs),
    max_deliver: maxDeliver,
    filter_subject: filterSubject,
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
  });

  let stopping = false;
  let messages: ConsumerMessages | undefined;
  const advisoryWork = new Set<Promise<void>>();

  // Subscribed before consuming so no advisory of ours is missed; the queue group makes one replica
  // handle each advisory (recording stays idempotent on (consumer, streamSeq) anyway).
  const advisories: Subscription = deps.nc.subscribe(maxDeliveriesAdvisorySubject(stream, name), {
    queue: name,
    callback: (error, message) => {
      if (error !== null) {
        log.error({ err: error }, 'max-deliveries advisory subscription failed');
        return;
      }
      const work = handleAdvisory(message.data).finally(() => advisoryWork.delete(work));
      advisoryWork.add(work);
    },
  });

  async function handleAdvisory(data: Uint8Array): Promise<void> {
    // nats-server's, but anyone allowed on the subject could publish one: the same limits as payloads.
    const reading = readPayload(data, payloadLimits);
    if (!reading.ok) {
      log.error({ code: reading.code, reason: reading.reason }, 'unreadable max-deliveries advisory');
      return;
    }
    const body = reading.body;
    const advisory = parseMaxDeliveriesAdvisory(body);
    if (advisory === null || advisory.stream !== stream || advisory.consumer !== name) {
      log.error({ advisory: body }, 'unexpected max-deliveries advisory');
      return;
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await deadLetterFromAdvisory(advisory.streamSeq, advisory.deliveries);
        return;
      } catch (error) {
        if (attempt >= ADVISORY_RETRIES || stopping) {
          // The advisory is core NATS (at most once): nothing will bring it back.
          log.error(
            { err: error, streamSeq: advisory.streamSeq },
            'could not record a max-deliveries dead letter; the message stays unacknowledged in the stream',
          );
          return;
        }
        await sleep(RESTART_DELAY_MS * attempt);
      }
    }
  }

  async function deadLetterFromAdvisory(streamSeq: number, deliveries: number): Promise<void> {
    const stored = await deps.jsm.streams.getMessage(stream, { seq: streamSeq });
    const headers = fromNatsHeaders(stored?.header);
    const payload = stored?.data ?? new Uint8Array();
    await writeDeadLetter(
      sink,
      {
        consumer: name,
        durable: options.durable,
        subject: stored?.subject ?? filterSubject,
        streamSeq,
        messageId: messageIdOf(payload, headers),
        code: ErrorCodes.BUS_MAX_DELIVERIES,
        reason:
          stored === null
            ? `not acknowledged after ${deliveries} deliveries; the message is no longer in the stream`
            : `not acknowledged after ${deliveries} deliveries (the handler hung past the ack wait or its process died)`,
        deliveryCount: deliveries,
      },
      payload,
      headers,
    );
  }

  /** The message id for a dead letter: `messageId(parsed)` when it parses, else `Nats-Msg-Id`. */
  function messageIdOf(payload: Uint8Array, headers: Record<string, string>): string | null {
    const reading = readPayload(payload, payloadLimits);
    if (reading.ok) {
      const parsed = safeSchemaParse(options.schema, reading.body);
      try {
        if (parsed.ok) return options.messageId(parsed.data);
      } catch {
        // fall through to the header
      }
    }
    return headers[MSG_ID_HEADER] ?? null;
  }

  async function deadLetter(
    message: JsMsg,
    headers: Record<string, string>,
    messageId: string | null,
    code: string,
    reason: string,
  ): Promise<void> {
    const deliveryCount = message.info.deliveryCount;
    try {
      await writeDeadLetter(
        sink,
        {
          consumer: name,
          durable: options.durable,
          subject: message.subject,
          streamSeq: message.seq,
          messageId,
          code,
          reason,
          deliveryCount,
        },
        message.data,
        headers,
      );
    } catch (error) {
      // Never terminate a message whose dead letter was not stored: let it come back and try again.
      const delayMs = nakDelayMs(deliveryCount);
      log.error(
        { err: error, streamSeq: message.seq, code, delayMs },
        'could not record a dead letter; message will be redelivered',
      );
      message.nak(delayMs);
      return;
    }
    // No reason argument: nats-server < 2.11 does not recognise "+TERM <reason>" and would ignore it.
    message.term();
  }

  async function processMessage(message: JsMsg): Promise<void> {
    const headers = fromNatsHeaders(message.headers);
    const headerMessageId = headers[MSG_ID_HEADER] ?? null;
    const deliveryCount = message.info.deliveryCount;

    // A claim check carries only a reference: read the real payload from its outbox row first, so limits,
    // schema and handler see the payload itself. A database failure throws: the message comes back.
    const claimed = await resolveClaimCheck(deps.db, message.subject, headers, message.data);
    if (!claimed.ok) {
      await deadLetter(message, headers, headerMessageId, claimed.code, claimed.reason);
      return;
    }
    // Limits, UTF-8 and JSON before the schema, the schema before the handler: each refusal is a dead
    // letter with its own code on the first delivery (it would fail the same way on every redelivery).
    const reading = readPayload(claimed.data, payloadLimits);
    if (!reading.ok) {
      await deadLetter(message, headers, headerMessageId, reading.code, reading.reason);
      return;
    }
    const parsed = safeSchemaParse(options.schema, reading.body);
    if (!parsed.ok) {
      await deadLetter(message, headers, headerMessageId, parsed.code, parsed.reason);
      return;
    }

    let messageId = headerMessageId;
    let messageLog = log.child({ subject: message.subject, streamSeq: message.seq, deliveryCount });
    try {
      messageId = options.messageId(parsed.data);
      messageLog = messageLog.child({ messageId, correlationId: correlationIdOf(parsed.data) });
      await options.handle(parsed.data, {
        messageId,
        consumer: name,
        subject: message.subject,
        streamSeq: message.seq,
        deliveryCount,
        headers,
        json: reading.body,
        log: messageLog,
        working: () => message.working(),
      });
    } catch (error) {
      const permanent = permanentFailure(error);
      if (permanent !== null) {
        await deadLetter(message, headers, messageId, permanent.code, permanent.message);
        return;
      }
      const reason = error instanceof Error ? error.message : String(error);
      if (deliveryCount >= maxDeliver) {
        // Dead-letter the last delivery here rather than rely only on the advisory, which is
        // at-most-once core NATS; the advisory still covers handlers that hang or processes that die.
        messageLog.error({ err: error }, 'handler failed on the last delivery');
        await deadLetter(
          message,
          headers,
          messageId,
          ErrorCodes.BUS_MAX_DELIVERIES,
          `failed ${deliveryCount} deliveries; last error: ${reason}`,
        );
        return;
      }
      const delayMs = nakDelayMs(deliveryCount);
      messageLog.warn({ err: error, delayMs }, 'handler failed; message will be redelivered');
      message.nak(delayMs);
      return;
    }
    message.ack();
  }

  /**
   * Holds one pulled message until it settles: heartbeats it from the moment it arrives (waiting for a
   * handler slot included) until it is acked, naked or terminated.
   */
  async function hold(message: JsMsg, beatMs: number, slots: Slots): Promise<void> {
    const heldSince = Date.now();
    const beat = setInterval(() => {
      if (Date.now() - heldSince >= maxWorkingMs) {
        clearInterval(beat);
        log.warn(
          { streamSeq: message.seq, maxWorkingMs },
          'handler still running after maxWorkingMs; no longer heartbeating, so the message will be redelivered',
        );
        return;
      }
      try {
        message.working();
      } catch {
        // The connection is gone: the ack wait brings the message back.
      }
    }, beatMs);
    try {
      await slots.acquire();
      try {
        if (stopping) {
          // Pulled but not started: give it back now instead of after the ack wait.
          message.nak();
          return;
        }
        await processMessage(message).catch((error: unknown) => {
          // processMessage handles its own failures; this is a bug guard so the loop never dies and
          // the message comes back after a delay instead of waiting out its ack wait unacknowledged.
          log.error(
            { err: error, streamSeq: message.seq },
            'unexpected error while processing a message; it will be redelivered',
          );
          try {
            message.nak(nakDelayMs(message.info.deliveryCount));
          } catch {
            // The connection is gone: the ack wait brings the message back.
          }
        });
      } finally {
        slots.release();
      }
    } finally {
      clearInterval(beat);
    }
  }

  async function runLoop(): Promise<void> {
    const held = new Set<Promise<void>>();
    const slots = createSlots(concurrency);
    while (!stopping) {
      try {
        const consumer = await deps.js.consumers.get(stream, name);
        // A provisioned consumer keeps the server's ack wait when it differs: beat for the shorter one.
        const serverAckWaitMs = Math.floor(((await consumer.info(true)).config.ack_wait ?? 0) / 1_000_000);
        const beatMs = heartbeatIntervalMs(
          serverAckWaitMs > 0 ? Math.min(ackWaitMs, serverAckWaitMs) : ackWaitMs,
        );
        while (!stopping) {
          // Pull only what can be held: a process that dies holds at most `prefetch` messages.
          if (held.size >= prefetch) {
            await Promise.race(held);
            continue;
          }
          messages = await consumer.fetch({ max_messages: prefetch - held.size, expires: FETCH_EXPIRES_MS });
          if (stopping) messages.stop();
          for await (const message of messages) {
            if (stopping) {
              message.nak();
              continue;
            }
            const work = hold(message, beatMs, slots).finally(() => held.delete(work));
            held.add(work);
          }
          if (deps.nc.isClosed()) break;
        }
        if (!stopping && deps.nc.isClosed()) return;
      } catch (error) {
        if (stopping || deps.nc.isClosed()) break;
        log.error({ err: error }, 'consume loop failed; restarting');
      } finally {
        await Promise.all(held);
      }
      if (!stopping) await sleep(RESTART_DELAY_MS);
    }
  }

  const loop = runLoop();
  let stopped: Promise<void> | undefined;

  return {
    name,
    stream,
    subject: filterSubject,
    stop() {
      stopped ??= (async () => {
        stopping = true;
        messages?.stop();
        await loop;
        advisories.unsubscribe();
        await Promise.all(advisoryWork);
      })();
      return stopped;
    },
  };
}

function correlationIdOf(message: unknown): string | undefined {
  if (typeof message !== 'object' || message === null || !('correlationId' in message)) return undefined;
  return typeof message.correlationId === 'string' ? message.correlationId : undefined;
}

/** A counting semaphore of handler slots. */
interface Slots {
  acquire(): Promise<void>;
  release(): void;
}

function createSlots(size: number): Slots {
  let free = size;
  const waiting: Array<() => void> = [];
  return {
    acquire() {
      if (free > 0) {
        free--;
        return Promise.resolve();
      }
      return new Promise((resolve) => waiting.push(resolve));
    },
    release() {
      const next = waiting.shift();
      if (next === undefined) free++;
      else next();
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
