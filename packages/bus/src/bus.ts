import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import {
  ErrorCodes,
  TandemError,
  assertSubjectPrefix,
  consumerNameFor,
  streamNameFor,
  subjectFor,
} from '@tandem/contracts';
import type { Db } from '@tandem/db';
import type { Logger } from 'pino';
import { startConsumer, type ConsumeOptions, type RunningConsumer } from './consumer.js';
import type { DeadLetterListener } from './dead-letters.js';
import { CLAIM_CHECK_HEADER, DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES, claimCheckBody } from './claim-check.js';
import { MSG_ID_HEADER, toNatsHeaders } from './headers.js';
import { parseOrThrow, type MessageSchema } from './schema.js';
import { ensureStreams, entityOfSuffix } from './streams.js';
import { ServiceTopologies, isNatsService } from './topology.js';

/** Options of {@link connectBus}. */
export interface ConnectBusOptions {
  /** NATS server URL(s), e.g. `nats://127.0.0.1:4222`. */
  servers: string | string[];
  /** The deployment prefix of subjects, streams and consumers (default in config: `tandem`). */
  prefix: string;
  /** The connection name shown by the server (the service name). */
  name: string;
  /** The process's pino logger. */
  log: Logger;
  /** Where consumers record dead letters. */
  db: Db;
  /** Called for every newly recorded dead letter (e.g. to count it in a metric). */
  onDeadLetter?: DeadLetterListener;
  /** Stream retention (default 7 days). */
  streamMaxAgeMs?: number;
  /** Stream replicas in a NATS cluster (default 1; `TANDEM_STREAM_REPLICAS`): raised, never lowered. */
  streamReplicas?: number;
  /** How long to wait for a PubAck or a JetStream API answer (default 5 s). */
  timeoutMs?: number;
  /**
   * A payload stored in the outbox (`publish` with `claimCheck: true`) of more serialized bytes than this is
   * sent as a claim check: a small reference that consumers resolve from Postgres (default 256 KiB, well
   * under NATS's max_payload of 1 MiB). null: never (payloads over max_payload then fail for good).
   */
  claimCheckThresholdBytes?: number | null;
  /**
   * Streams and durable consumers were created by the provisioner (`provisionNats`, `pnpm nats:provision`):
   * the bus neither ensures the streams nor creates consumers, it checks that each consumer exists. Set it
   * for a connection with credentials, whose user has no right to create them.
   */
  provisioned?: boolean;
  /** Further connection options (credentials, TLS); `servers` and `name` above take precedence. */
  connection?: Omit<NodeConnectionOptions, 'servers' | 'name'>;
}

/** Options of {@link Bus.publish}. */
export interface PublishOptions {
  /** Sent as `Nats-Msg-Id`: JetStream drops a second publish with the same id within 2 minutes. */
  msgId: string;
  /** Extra NATS headers. */
  headers?: Record<string, string>;
  /**
   * The payload is stored as Outbox row `msgId` (the relay's publishes): over the bus's claim-check threshold
   * it is sent as a claim check (header `Tandem-Claim-Check: <msgId>`, body `{"claimCheck":{...}}`).
   */
  claimCheck?: boolean;
}

/** What JetStream answered to a publish. */
export interface PublishResult {
  stream: string;
  seq: number;
  /** True when JetStream already had a message with this msgId (nothing new was stored). */
  duplicate: boolean;
}

/** An event declaration as `publishEvent` needs it (`defineEvent(...)` from contracts fits). */
export interface PublishableEvent<TEnvelope extends { id: string }> {
  readonly subjectSuffix: string;
  readonly envelope: MessageSchema<TEnvelope>;
}

/** A connection to NATS JetStream with Tandem's streams in place. */
export interface Bus {
  /** The deployment prefix. */
  readonly prefix: string;
  /** The core NATS connection (for request/reply queries). */
  readonly nc: NatsConnection;
  /** The JetStream client. */
  readonly js: JetStreamClient;
  /** The JetStream manager (streams, consumers, stored messages). */
  readonly jsm: JetStreamManager;
  /** `<prefix>.<suffix>`. */
  subject(suffix: string): string;
  /**
   * Publishes `payload` as JSON to a full subject under the prefix and waits for the PubAck. A publish that
   * can never succeed (over max_payload, a subject outside the prefix, refused by permissions, invalid)
   * throws a non-retryable TandemError (`BUS.PAYLOAD_TOO_LARGE`, `BUS.PUBLISH_REFUSED`).
   */
  publish(subject: string, payload: unknown, options: PublishOptions): Promise<PublishResult>;
  /**
   * Whether the stream already stores a message with `Nats-Msg-Id` = `msgId` on `subject`, looking at the
   * subject's messages after stream sequence `afterSeq` (a lower bound the caller knows): true or false,
   * or null when it could not tell (NATS unreachable, more than `maxSteps` messages to look at, out of
   * time). For a publish whose PubAck was lost: republishing a stored message would reach core-NATS
   * subscribers twice, which JetStream's duplicate window does not prevent.
   */
  findPublished(
    subject: string,
    msgId: string,
    afterSeq: number,
    limits?: { maxSteps?: number; timeoutMs?: number },
  ): Promise<boolean | null>;
  /** Validates the envelope against the event's schema, then publishes it with `Nats-Msg-Id` = envelope id. */
  publishEvent<TEnvelope extends { id: string }>(
    event: PublishableEvent<TEnvelope>,
    envelope: TEnvelope,
  ): Promise<PublishResult>;
  /** Creates or updates (provisioned: checks) a durable pull consumer and starts handling its messages. */
  consume<T>(options: ConsumeOptions<T>): Promise<RunningConsumer>;
  /** Stops every consumer (waiting for handlers in flight), then drains and closes the connection. */
  drain(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 5_000;
const encoder = new TextEncoder();
/** JetStream's API error code for a message over the stream's max_msg_size. */
const JS_MESSAGE_SIZE_EXCEEDED = 10054;

/**
 * A publish failure that will never succeed, as a non-retryable TandemError; null for failures worth
 * retrying (no connection, timeout, no stream answering).
 */
export function permanentPublishError(
  error: unknown,
  subject: string,
  bytes: number,
  maxPayload: number | undefined,
): TandemError | null {
  for (
    let cause: unknown = error, depth = 0;
    cause instanceof Error && depth < 5;
    cause = cause.cause, depth++
  ) {
    const code = 'code' in cause ? cause.code : undefined;
    if (cause.name === 'InvalidArgumentError' && cause.message.includes('max_payload'))
      return new TandemError(
        ErrorCodes.BUS_PAYLOAD_TOO_LARGE,
        `the message on ${subject} is ${bytes} bytes (headers not counted), over the server's max_payload` +
          (maxPayload === undefined ? '' : ` of ${maxPayload} bytes`),
        { cause: error },
      );
    if (code === JS_MESSAGE_SIZE_EXCEEDED)
      return new TandemError(
        ErrorCodes.BUS_PAYLOAD_TOO_LARGE,
        `the message on ${subject} is ${bytes} bytes, over the stream's message size limit: ${cause.message}`,
        { cause: error },
      );
    if (cause.name === 'PermissionViolationError' || cause.name === 'InvalidSubjectError')
      return new TandemError(
        ErrorCodes.BUS_PUBLISH_REFUSED,
        `publishing on ${subject} was refused: ${cause.message}`,
        {
          cause: error,
        },
      );
  }
  return null;
}

/**
 * Connects to NATS, ensures the streams of every entity exist (unless `provisioned`), and returns the
 * {@link Bus}.
 */
export async function connectBus(options: ConnectBusOptions): Promise<Bus> {
  const prefix = assertSubjectPrefix(options.prefix);
  const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const claimCheckThreshold =
    options.claimCheckThresholdBytes === undefined
      ? DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES
      : options.claimCheckThresholdBytes;
  if (claimCheckThreshold !== null && (!Number.isInteger(claimCheckThreshold) || claimCheckThreshold < 1))
    throw new RangeError(
      `claimCheckThresholdBytes must be a positive integer or null, got ${claimCheckThreshold}`,
    );
  const log = options.log.child({ component: 'bus' });
  const nc = await connect({
    // A service keeps trying to reach NATS for as long as it runs.
    maxReconnectAttempts: -1,
    ...options.connection,
    servers: options.servers,
    name: options.name,
  });
  void watchStatus(nc, log);

  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc, { timeout });
    if (options.provisioned !== true) {
      const changes = await ensureStreams(jsm, {
        prefix,
        maxAgeMs: options.streamMaxAgeMs,
        replicas: options.streamReplicas,
      });
      log.debug({ streams: changes }, 'streams ensured');
    }
  } catch (error) {
    await nc.close();
    throw error;
  }
  const js = jetstream(nc, { timeout });
  const consumers = new Set<RunningConsumer>();
  let draining: Promise<void> | undefined;

  async function publish(
    subject: string,
    payload: unknown,
    publishOptions: PublishOptions,
  ): Promise<PublishResult> {
    if (!subject.startsWith(`${prefix}.`)) {
      throw new TandemError(
        ErrorCodes.BUS_PUBLISH_REFUSED,
        `subject "${subject}" is not under the prefix "${prefix}"; use bus.subject(suffix)`,
      );
    }
    const json = JSON.stringify(payload);
    if (json === undefined) throw new TypeError(`payload for ${subject} is not JSON-serialisable`);
    let body = encoder.encode(json);
    const headers = { ...publishOptions.headers };
    if (
      publishOptions.claimCheck === true &&
      claimCheckThreshold !== null &&
      body.length > claimCheckThreshold
    ) {
      // The payload stays in its Outbox row; consumers read it from there (resolveClaimCheck).
      headers[CLAIM_CHECK_HEADER] = publishOptions.msgId;
      body = encoder.encode(claimCheckBody(publishOptions.msgId, body.length));
    }
    try {
      const ack = await js.publish(subject, body, {
        msgID: publishOptions.msgId,
        headers: toNatsHeaders(headers),
      });
      return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
    } catch (error) {
      throw permanentPublishError(error, subject, body.length, nc.info?.max_payload) ?? error;
    }
  }

  async function findPublished(
    subject: string,
    msgId: string,
    afterSeq: number,
    limits: { maxSteps?: number; timeoutMs?: number } = {},
  ): Promise<boolean | null> {
    if (!subject.startsWith(`${prefix}.`)) return null;
    const maxSteps = limits.maxSteps ?? 1_000;
    const deadline = Date.now() + (limits.timeoutMs ?? 3_000);
    let stream: string;
    try {
      stream = streamNameFor(prefix, entityOfSuffix(subject.slice(prefix.length + 1)));
    } catch {
      return null;
    }
    let seq = Math.max(0, afterSeq) + 1;
    try {
      for (let step = 0; step < maxSteps && Date.now() < deadline; step += 1) {
        // STREAM.MSG.GET with next_by_subj (nats-server >= 2.9): the client's getMessage types lack it.
        const reply = await nc.request(
          `$JS.API.STREAM.MSG.GET.${stream}`,
          encoder.encode(JSON.stringify({ seq, next_by_subj: subject })),
          { timeout: Math.max(100, deadline - Date.now()) },
        );
        const found = readStoredMessage(reply.data);
        if (found === 'none') return false;
        if (found === null) return null;
        if (found.msgId === msgId) return true;
        seq = found.seq + 1;
      }
    } catch {
      return null;
    }
    return null;
  }

  return {
    prefix,
    nc,
    js,
    jsm,
    subject: (suffix) => subjectFor(prefix, suffix),
    publish,
    findPublished,
    async publishEvent(event, envelope) {
      const parsed = parseOrThrow(event.envelope, envelope, `event for ${event.subjectSuffix}`);
      return publish(subjectFor(prefix, event.subjectSuffix), parsed, { msgId: parsed.id });
    },
    async consume(consumeOptions) {
      if (draining !== undefined) throw new Error('the bus is draining; no new consumers');
      if (options.provisioned === true) assertDeclared(options.name, prefix, consumeOptions);
      const running = await startConsumer(
        {
          nc,
          js,
          jsm,
          prefix,
          db: options.db,
          log,
          onDeadLetter: options.onDeadLetter,
          provisioned: options.provisioned === true,
        },
        consumeOptions,
      );
      consumers.add(running);
      return {
        name: running.name,
        stream: running.stream,
        subject: running.subject,
        async stop() {
          await running.stop();
          consumers.delete(running);
        },
      };
    },
    drain() {
      draining ??= (async () => {
        await Promise.all([...consumers].map((consumer) => consumer.stop()));
        consumers.clear();
        if (!nc.isClosed()) await nc.drain();
      })();
      return draining;
    },
  };
}

/**
 * A provisioned service consumes only what topology.ts declares for it (the provisioner created exactly
 * those): anything else is a drift between the service and the list, reported before asking the server.
 */
function assertDeclared(
  service: string,
  prefix: string,
  consume: { durable: string; subject: string },
): void {
  if (!isNatsService(service)) return;
  const declared = ServiceTopologies[service].consumers.find((spec) => spec.durable === consume.durable);
  if (declared !== undefined && declared.subject === consume.subject) return;
  throw new TandemError(
    ErrorCodes.BUS_NOT_PROVISIONED,
    declared === undefined
      ? `${service} consumes ${consumerNameFor(prefix, consume.durable)}, which packages/bus/src/topology.ts does not declare for it ` +
          '(so it was not provisioned); declare it there and run pnpm nats:provision'
      : `${service}'s consumer ${consume.durable} is declared on ${declared.subject} in packages/bus/src/topology.ts, ` +
          `not ${consume.subject}`,
  );
}

async function watchStatus(nc: NatsConnection, log: Logger): Promise<void> {
  try {
    for await (const status of nc.status()) {
      switch (status.type) {
        case 'disconnect':
          log.warn({ server: status.server }, 'nats disconnected');
          break;
        case 'reconnect':
          log.info({ server: status.server }, 'nats reconnected');
          break;
        case 'error':
          log.error({ err: status.error }, 'nats connection error');
          break;
        default:
          break;
      }
    }
  } catch (error) {
    log.error({ err: error }, 'nats status watcher failed');
  }
}

/**
 * A STREAM.MSG.GET reply: the message's sequence and `Nats-Msg-Id`, 'none' when there is no such message
 * (404), null for anything else.
 */
export function readStoredMessage(data: Uint8Array): { seq: number; msgId: string | null } | 'none' | null {
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder().decode(data));
  } catch {
    return null;
  }
  if (typeof body !== 'object' || body === null) return null;
  if ('error' in body) {
    const error = body.error;
    const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
    return code === 404 ? 'none' : null;
  }
  const message = 'message' in body ? body.message : undefined;
  if (typeof message !== 'object' || message === null) return null;
  const seq = 'seq' in message ? message.seq : undefined;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return null;
  const hdrs = 'hdrs' in message && typeof message.hdrs === 'string' ? message.hdrs : undefined;
  if (hdrs === undefined) return { seq, msgId: null };
  const lines = Buffer.from(hdrs, 'base64').toString('utf8').split('\r\n');
  const prefix = `${MSG_ID_HEADER.toLowerCase()}:`;
  const line = lines.find((candidate) => candidate.toLowerCase().startsWith(prefix));
  return { seq, msgId: line === undefined ? null : line.slice(prefix.length).trim() };
}
