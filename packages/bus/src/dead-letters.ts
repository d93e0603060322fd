import { recordDeadLetter, type Db } from '@tandem/db';
import type { Logger } from 'pino';

/** A dead letter that was just recorded (for metrics: count it by `consumer` and `code`). */
export interface DeadLetterInfo {
  /** The JetStream consumer name (`<PREFIX>_<durable>`). */
  consumer: string;
  /** The durable name as the service gave it. */
  durable: string;
  subject: string;
  streamSeq: number;
  messageId: string | null;
  /**
   * A `DOMAIN.REASON` error code: `BUS.PAYLOAD_TOO_LARGE`, `BUS.PAYLOAD_TOO_DEEP`, `BUS.UNPARSEABLE`,
   * `BUS.SCHEMA_INVALID`, `BUS.STACK_OVERFLOW`, `BUS.MAX_DELIVERIES` or the handler's.
   */
  code: string;
  reason: string;
  deliveryCount: number;
}

/** Called once for every newly recorded dead letter (not for repeats of the same (consumer, streamSeq)). */
export type DeadLetterListener = (info: DeadLetterInfo) => void;

/** What a consumer needs to write dead letters. */
export interface DeadLetterSink {
  db: Db;
  log: Logger;
  onDeadLetter: DeadLetterListener | undefined;
}

/** Records a dead letter in Postgres; returns whether the row is new. Throws when the database does. */
export async function writeDeadLetter(
  sink: DeadLetterSink,
  info: DeadLetterInfo,
  payload: Uint8Array,
  headers: Record<string, string>,
): Promise<boolean> {
  const recorded = await recordDeadLetter(sink.db, {
    consumer: info.consumer,
    subject: info.subject,
    streamSeq: info.streamSeq,
    messageId: info.messageId,
    code: info.code,
    reason: info.reason,
    payload,
    headers,
    deliveryCount: info.deliveryCount,
  });
  if (recorded) {
    sink.log.warn(
      {
        consumer: info.consumer,
        subject: info.subject,
        streamSeq: info.streamSeq,
        messageId: info.messageId,
        code: info.code,
        deliveryCount: info.deliveryCount,
        reason: info.reason,
      },
      'message dead-lettered',
    );
    if (sink.onDeadLetter !== undefined) {
      try {
        sink.onDeadLetter(info);
      } catch (error) {
        sink.log.error({ err: error }, 'onDeadLetter listener threw');
      }
    }
  }
  return recorded;
}

/** The JetStream advisory sent when a message exceeded a consumer's `max_deliver`. */
export interface MaxDeliveriesAdvisory {
  stream: string;
  consumer: string;
  streamSeq: number;
  deliveries: number;
}

/**
 * Subject of the max-deliveries advisory of one consumer. Wire name defined by nats-server
 * (`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>`).
 */
export function maxDeliveriesAdvisorySubject(stream: string, consumer: string): string {
  return `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${consumer}`;
}

/**
 * Reads the advisory body (`io.nats.jetstream.advisory.v1.max_deliver`: stream, consumer, stream_seq,
 * deliveries); null when it is not one.
 */
export function parseMaxDeliveriesAdvisory(body: unknown): MaxDeliveriesAdvisory | null {
  if (typeof body !== 'object' || body === null) return null;
  const stream = 'stream' in body ? body.stream : undefined;
  const consumer = 'consumer' in body ? body.consumer : undefined;
  const streamSeq = 'stream_seq' in body ? body.stream_seq : undefined;
  const deliveries = 'deliveries' in body ? body.deliveries : undefined;
  if (typeof stream !== 'string' || typeof consumer !== 'string') return null;
  if (typeof streamSeq !== 'number' || !Number.isSafeInteger(streamSeq) || streamSeq < 1) return null;
  if (typeof deliveries !== 'number' || !Number.isSafeInteger(deliveries)) return null;
  return { stream, consumer, streamSeq, deliveries };
}
