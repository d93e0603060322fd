import {
  JsonValue,
  createEnvelope,
  subjectFor,
  type Envelope,
  type EventDefinition,
} from '@tandem/contracts';
import type { OutboxMessage } from '@tandem/db';
import type { z } from 'zod';

type JsonObject = { [key: string]: JsonValue };

function toJsonObject(value: unknown): JsonObject {
  const parsed = JsonValue.parse(JSON.parse(JSON.stringify(value)));
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new Error('an outbox payload must be a JSON object');
  return parsed;
}

/** Builds an event envelope and the outbox row that will publish it (Nats-Msg-Id = envelope id). */
export function outboxEvent<TType extends string, TData extends z.ZodType>(
  options: { prefix: string; publisher: string },
  event: EventDefinition<TType, TData>,
  data: z.infer<TData>,
  meta: { correlationId: string; causationId?: string | null; id?: string },
): { envelope: Envelope<z.infer<TData>>; message: OutboxMessage } {
  const envelope = createEnvelope(event, data, meta);
  return {
    envelope,
    message: {
      id: envelope.id,
      publisher: options.publisher,
      subject: subjectFor(options.prefix, event.subjectSuffix),
      payload: toJsonObject(envelope),
    },
  };
}

/** The outbox row for a public CloudEvent (Nats-Msg-Id = the CloudEvent's id). */
export function outboxCloudEvent(
  options: { prefix: string; publisher: string },
  subjectSuffix: string,
  cloudEvent: { id: string; [attribute: string]: unknown },
): OutboxMessage {
  return {
    id: cloudEvent.id,
    publisher: options.publisher,
    subject: subjectFor(options.prefix, subjectSuffix),
    payload: toJsonObject(cloudEvent),
    headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' },
  };
}
