import {
  isProcessed,
  markProcessed,
  transaction,
  type Db,
  type TransactionOptions,
  type Tx,
} from '@tandem/db';
import type { Bus } from './bus.js';
import type { ConsumeOptions, MessageContext, RunningConsumer } from './consumer.js';
import type { MessageSchema } from './schema.js';
import { ServiceTopologies, type DurableConsumerSpec, type NatsService } from './topology.js';

/**
 * The consumer protocol, written once. A consumer declares what it consumes and decides what to do; the
 * framework owns delivery: the transaction, the inbox row that makes a redelivery harmless, the hand-over
 * of committed outbox rows to the relay (`enqueueOutbox` on the transaction does it after COMMIT), the
 * ack after COMMIT, heartbeats while the handler runs, and the choice between a nak with delay (a
 * retryable error, or any error that is not a TandemError) and a dead letter (a TandemError with
 * `retryable: false`, an invalid message, or the last allowed delivery).
 */

/** Whether the message's final transaction ran, or was skipped because an earlier delivery committed it. */
export type Committed<T> = { duplicate: true } | { duplicate: false; value: T };

/** What a consumer's code gets beside the parsed message. */
export interface ConsumerContext<TDeps> extends MessageContext {
  /** The dependencies the service passed to {@link startConsumer}. */
  deps: TDeps;
  /** The consumer's inbox key (its durable name). */
  inbox: string;
  /** True on the last allowed delivery: a retryable failure now dead-letters the message. */
  lastDelivery: boolean;
  /** Whether an earlier delivery already committed this message (a read, outside any transaction). */
  processed(): Promise<boolean>;
  /**
   * The message's final transaction: records it in the inbox first, then runs `fn`; a duplicate (an
   * earlier delivery committed) runs nothing. Call it at most once per delivery.
   */
  commit<T>(fn: (tx: Tx) => Promise<T>, options?: TransactionOptions): Promise<Committed<T>>;
  /** A transaction that does not record the message (state on the way to the final one). */
  transaction<T>(fn: (tx: Tx) => Promise<T>, options?: TransactionOptions): Promise<T>;
}

/** Delivery settings of a consumer. */
export type ConsumerDelivery = Pick<
  ConsumeOptions<unknown>,
  'maxDeliver' | 'ackWaitMs' | 'maxWorkingMs' | 'concurrency' | 'prefetch' | 'nakDelayMs' | 'payloadLimits'
>;

/** The simple form: the whole effect of a message is one transaction, then optional work after COMMIT. */
export interface TransactionalBody<TDeps, TMessage, TResult> {
  /**
   * Optional, before any transaction: true when the message asks nothing of this consumer now, decided
   * from the message and at most reads (e.g. a step finished that no request waits for). The framework
   * then acks it with no transaction and no inbox row, so a message that changes nothing costs no write.
   * Only where nothing is written for such a message: a redelivery is decided the same way, and what
   * `handle` writes is still guarded by the inbox.
   */
  ignore?(message: TMessage, context: ConsumerContext<TDeps>): boolean | Promise<boolean>;
  /** In the message's transaction, after its inbox row: load state, decide, write. Skipped for a duplicate. */
  handle(tx: Tx, message: TMessage, context: ConsumerContext<TDeps>): Promise<TResult>;
  /**
   * After COMMIT, on every delivery, a duplicate's too (an earlier delivery may have committed and died
   * before this ran): work outside the database, such as moving the task on. A throw naks the message,
   * whose redelivery is a duplicate for `handle` and runs `after` again.
   */
  after?(committed: Committed<TResult>, message: TMessage, context: ConsumerContext<TDeps>): Promise<void>;
  run?: never;
}

/**
 * The staged form, for a message whose work spans calls to other systems (a model, the sandbox) between
 * transactions: `run` calls `context.commit` for the final transaction. When `run` returns without
 * having committed, the framework records the message in the inbox itself.
 */
export interface StagedBody<TDeps, TMessage> {
  run(message: TMessage, context: ConsumerContext<TDeps>): Promise<void>;
  handle?: never;
  after?: never;
  ignore?: never;
}

/** What every consumer declares besides its body. */
export interface ConsumerHead {
  /** The durable name (wire name: renaming it creates a new durable consumer); also the inbox key. */
  durable: string;
  /** Delivery settings beside the ones the service passes at start (which win). */
  delivery?: ConsumerDelivery;
}

/** Where the messages come from: an internal event (its envelope), or any subject with its schema. */
export type ConsumerSource<TMessage> =
  | {
      /** The event: subject, envelope schema and message id (the envelope id) come from it. */
      event: { subjectSuffix: string; envelope: MessageSchema<TMessage> };
      subject?: never;
      schema?: never;
      messageId?: never;
    }
  | {
      event?: never;
      /** The subject without the prefix. */
      subject: string;
      /** The message schema. */
      schema: MessageSchema<TMessage>;
      /** The idempotency key of a parsed message. */
      messageId: (message: TMessage) => string;
    };

/** A declared consumer, as {@link startConsumer} runs it. */
export interface ConsumerDefinition<TDeps, TMessage> {
  service: NatsService;
  durable: string;
  subject: string;
  schema: MessageSchema<TMessage>;
  messageId: (message: TMessage) => string;
  delivery: ConsumerDelivery;
  body: TransactionalBody<TDeps, TMessage, unknown> | StagedBody<TDeps, TMessage>;
}

/** The declaration a service writes for one consumer. */
export type ConsumerDeclaration<TDeps, TMessage, TResult> = ConsumerHead &
  ConsumerSource<TMessage> &
  (TransactionalBody<TDeps, TMessage, TResult> | StagedBody<TDeps, TMessage>);

/**
 * The consumer declarer of one service: `const define = consumersOf<Deps>('executor')`, then one
 * `define({...})` per consumer file. Checks at declaration that the durable is declared in
 * `ServiceTopologies` for the service with the same subject.
 */
export function consumersOf<TDeps>(
  service: NatsService,
  topologies: Readonly<
    Record<string, { consumers: ReadonlyArray<Pick<DurableConsumerSpec, 'durable' | 'subject'>> }>
  > = ServiceTopologies,
): <TMessage, TResult = void>(
  declaration: ConsumerDeclaration<TDeps, TMessage, TResult>,
) => ConsumerDefinition<TDeps, TMessage> {
  return (declaration) => {
    const source = declaration.event
      ? {
          subject: declaration.event.subjectSuffix,
          schema: declaration.event.envelope,
          messageId: envelopeId,
        }
      : { subject: declaration.subject, schema: declaration.schema, messageId: declaration.messageId };
    const declared = topologies[service]?.consumers.find(
      (consumer) => consumer.durable === declaration.durable,
    );
    if (declared === undefined)
      throw new Error(`${service} declares no durable consumer ${declaration.durable} in topology.ts`);
    if (declared.subject !== source.subject)
      throw new Error(
        `${service}'s ${declaration.durable} consumes ${declared.subject} in topology.ts, not ${source.subject}`,
      );
    const body = declaration.run
      ? { run: declaration.run }
      : {
          handle: declaration.handle,
          ...(declaration.after ? { after: declaration.after } : {}),
          ...(declaration.ignore ? { ignore: declaration.ignore } : {}),
        };
    return {
      service,
      durable: declaration.durable,
      ...source,
      delivery: declaration.delivery ?? {},
      body,
    };
  };
}

function envelopeId(message: unknown): string {
  if (typeof message === 'object' && message !== null && 'id' in message && typeof message.id === 'string')
    return message.id;
  throw new TypeError('an event consumer received a message without an envelope id');
}

/** Where a consumer runs: the bus, the database, and a wrapper around each handled message (metrics). */
export interface ConsumerHost {
  bus: Pick<Bus, 'consume'>;
  db: Db;
  /** Wraps the handling of one message (e.g. to time it and count outcomes); default: none. */
  around?: (durable: string, handle: () => Promise<void>) => Promise<void>;
}

/**
 * Starts a declared consumer with the service's dependencies. `delivery` (from the service's config)
 * overrides the definition's own delivery settings.
 */
export async function startConsumer<TDeps, TMessage>(
  host: ConsumerHost,
  definition: ConsumerDefinition<TDeps, TMessage>,
  deps: TDeps,
  delivery: ConsumerDelivery = {},
): Promise<RunningConsumer> {
  const settings = { ...definition.delivery, ...delivery };
  const maxDeliver = settings.maxDeliver ?? 5;
  const around = host.around ?? ((_durable: string, handle: () => Promise<void>) => handle());
  return host.bus.consume<TMessage>({
    ...settings,
    durable: definition.durable,
    subject: definition.subject,
    schema: definition.schema,
    messageId: definition.messageId,
    handle: (message, messageContext) =>
      around(definition.durable, () =>
        handleMessage(host.db, definition, deps, maxDeliver, message, messageContext),
      ),
  });
}

/**
 * Runs one delivery of a declared consumer (what the bus calls; exported for tests that drive a
 * consumer without NATS). Resolves to ack, throws to nak or dead-letter (the bus decides from the error).
 */
export async function handleMessage<TDeps, TMessage>(
  db: Db,
  definition: ConsumerDefinition<TDeps, TMessage>,
  deps: TDeps,
  maxDeliver: number,
  message: TMessage,
  messageContext: MessageContext,
): Promise<void> {
  const inbox = definition.durable;
  let committed = false;
  const context: ConsumerContext<TDeps> = {
    ...messageContext,
    deps,
    inbox,
    lastDelivery: messageContext.deliveryCount >= maxDeliver,
    processed: () => isProcessed(db, inbox, messageContext.messageId),
    commit: async <T>(fn: (tx: Tx) => Promise<T>, options?: TransactionOptions): Promise<Committed<T>> => {
      if (committed) throw new Error(`${inbox}: commit() called twice for one delivery`);
      committed = true;
      return transaction(
        db,
        async (tx): Promise<Committed<T>> => {
          if (!(await markProcessed(tx, inbox, messageContext.messageId))) return { duplicate: true };
          return { duplicate: false, value: await fn(tx) };
        },
        options,
      );
    },
    transaction: (fn, options) => transaction(db, fn, options),
  };
  const body = definition.body;
  if (body.run) {
    await body.run(message, context);
    if (!committed) await context.commit(async () => undefined);
    return;
  }
  if (body.ignore && (await body.ignore(message, context))) return;
  const outcome = await context.commit((tx) => body.handle(tx, message, context));
  if (body.after) await body.after(outcome, message, context);
}
