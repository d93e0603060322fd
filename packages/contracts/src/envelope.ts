import { randomUUID } from 'node:crypto';
import { z } from 'zod';

/** Entities that own a JetStream stream each; the stream covers `<prefix>.<entity>.>`. */
export const Entities = ['task', 'plan', 'approval', 'step', 'sandbox'] as const;
/** One of {@link Entities}. */
export type Entity = (typeof Entities)[number];

/** A declared event: its type (`entity.verb`), major version and data schema. */
export interface EventDefinition<TType extends string, TData extends z.ZodType> {
  readonly type: TType;
  readonly version: number;
  readonly entity: Entity;
  readonly data: TData;
  /** The full envelope schema for this event. */
  readonly envelope: z.ZodType<Envelope<z.infer<TData>>>;
  /** `<entity>.<verb>.v<major>`: the subject without the deployment prefix. */
  readonly subjectSuffix: string;
}

/** Declares an event once; publisher, consumer and docs all use the returned object. */
export function defineEvent<const TType extends `${Entity}.${string}`, TData extends z.ZodType>(definition: {
  type: TType;
  version: number;
  data: TData;
}): EventDefinition<TType, TData> {
  const entity = definition.type.split('.')[0];
  const known = Entities.find((candidate) => candidate === entity);
  if (!known) throw new Error(`event type ${definition.type} does not start with a known entity`);
  const envelope = z.strictObject({
    id: z.uuid(),
    type: z.literal(definition.type),
    version: z.literal(definition.version),
    occurredAt: z.iso.datetime({ offset: true }),
    correlationId: z.string().min(1),
    causationId: z.string().min(1).nullable(),
    data: definition.data,
  });
  return {
    type: definition.type,
    version: definition.version,
    entity: known,
    data: definition.data,
    envelope: envelope as unknown as z.ZodType<Envelope<z.infer<TData>>>,
    subjectSuffix: `${definition.type}.v${definition.version}`,
  };
}

/** The internal envelope around every event Tandem publishes for itself. */
export interface Envelope<TData> {
  id: string;
  type: string;
  version: number;
  occurredAt: string;
  correlationId: string;
  causationId: string | null;
  data: TData;
}

/** Builds an envelope; `id` doubles as the `Nats-Msg-Id` so JetStream drops duplicate publishes. */
export function createEnvelope<TType extends string, TData extends z.ZodType>(
  event: EventDefinition<TType, TData>,
  data: z.infer<TData>,
  meta: { correlationId: string; causationId?: string | null; id?: string; occurredAt?: Date },
): Envelope<z.infer<TData>> {
  return {
    id: meta.id ?? randomUUID(),
    type: event.type,
    version: event.version,
    occurredAt: (meta.occurredAt ?? new Date()).toISOString(),
    correlationId: meta.correlationId,
    causationId: meta.causationId ?? null,
    data: event.data.parse(data),
  };
}

/** The data type of a declared event: `EventData<typeof PlanProposed>`. */
export type EventData<TEvent> = TEvent extends EventDefinition<string, infer TData> ? z.infer<TData> : never;
