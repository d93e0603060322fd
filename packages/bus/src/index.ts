// @tandem/bus: NATS JetStream streams, typed publish and consume, dead letters and the outbox relay.

/** Connects to NATS and ensures the streams of every entity; returns the Bus. */
export { connectBus } from './bus.js';
/** Options of connectBus: servers, prefix, name, log, db, onDeadLetter, stream retention. */
export type { ConnectBusOptions } from './bus.js';
/** A connection with publish, publishEvent, consume, subject, nc and drain. */
export type { Bus } from './bus.js';
/** Options of bus.publish: msgId (Nats-Msg-Id) and headers. */
export type { PublishOptions } from './bus.js';
/** The PubAck of a publish: stream, seq, duplicate. */
export type { PublishResult } from './bus.js';
/** What publishEvent needs of an event definition: its subject suffix and envelope schema. */
export type { PublishableEvent } from './bus.js';

/** Options of bus.consume: durable, subject suffix, schema, messageId, handle, delivery limits. */
/** The consumer framework: declare a consumer per file (consumersOf), start it (startConsumer). */
export { consumersOf, handleMessage, startConsumer } from './define-consumer.js';
/** Types of the consumer framework. */
export type {
  Committed,
  ConsumerContext,
  ConsumerDeclaration,
  ConsumerDefinition,
  ConsumerDelivery,
  ConsumerHead,
  ConsumerHost,
  ConsumerSource,
  StagedBody,
  TransactionalBody,
} from './define-consumer.js';
export type { ConsumeOptions } from './consumer.js';
/** What a handler gets beside the message: messageId, consumer, subject, streamSeq, deliveryCount, headers, log. */
export type { MessageContext } from './consumer.js';
/** A running consumer: name, stream, subject and stop(). */
export type { RunningConsumer } from './consumer.js';
/** Default max_deliver of a consumer (5). */
export { DEFAULT_MAX_DELIVER } from './consumer.js';
/** Default ack wait of a consumer (30 s). */
export { DEFAULT_ACK_WAIT_MS } from './consumer.js';
/** Default longest time one message is heartbeated (15 min). */
export { DEFAULT_MAX_WORKING_MS } from './consumer.js';
/** The default redelivery backoff: 1 s doubling per delivery, at most 60 s, with jitter. */
export { defaultNakDelayMs } from './consumer.js';
/** How often the consumer framework reports a held message working(): ackWait/3. */
export { heartbeatIntervalMs } from './consumer.js';
/** The code and message of a non-retryable error, or null when it should be retried. */
export { permanentFailure } from './consumer.js';

/** A newly recorded dead letter, as given to onDeadLetter. */
export type { DeadLetterInfo } from './dead-letters.js';
/** The onDeadLetter callback type. */
export type { DeadLetterListener } from './dead-letters.js';
/** The subject of nats-server's max-deliveries advisory for one consumer. */
export { maxDeliveriesAdvisorySubject } from './dead-letters.js';

/** Creates or updates every entity's stream; safe to run from several processes at once. */
export { ensureStreams } from './streams.js';
/** The replicas a stream keeps: the count asked for, or the server's when higher (never lowered). */
export { replicasToKeep } from './domain/stream-replicas.js';
/** Options of ensureStreams: prefix, maxAgeMs, replicas. */
export type { EnsureStreamsOptions } from './streams.js';
/** What ensureStreams did per stream: created, updated or unchanged. */
export type { StreamChange } from './streams.js';
/** The settings the bus manages on a stream. */
export type { ManagedStreamConfig } from './streams.js';
/** The desired config of one entity's stream. */
export { streamConfigFor } from './streams.js';
/** The entity (and so the stream) of a subject suffix such as `task.accepted.v1`. */
export { entityOfSuffix } from './streams.js';
/** Default stream retention (7 days). */
export { DEFAULT_STREAM_MAX_AGE_MS } from './streams.js';
/** The duplicate window of every stream (2 minutes). */
export { DUPLICATE_WINDOW_MS } from './streams.js';

/** The structural schema type consume and publishEvent accept (a zod schema fits). */
export type { MessageSchema } from './schema.js';
/** What MessageSchema.safeParse returns. */
export type { MessageSchemaResult } from './schema.js';
/** One schema issue (path, message). */
export type { SchemaIssue } from './schema.js';
/** Formats schema issues for a dead-letter reason. */
export { formatIssues } from './schema.js';

/** Creates the outbox relay of one publisher: start, kick, stop. */
export { createOutboxRelay } from './outbox-relay.js';
/** Options of createOutboxRelay: db, bus, publisher, batchSize, pollIntervalMs, claimLeaseMs, onUnpublishable, log. */
export type { OutboxRelayOptions } from './outbox-relay.js';
/** The outbox relay. */
export type { OutboxRelay } from './outbox-relay.js';
/** Default lease of a relay's claim on outbox rows (10 s). */
export { DEFAULT_CLAIM_LEASE_MS } from './outbox-relay.js';
/** The header on a replacement of an unpublishable row (`Tandem-Replaces: <outbox id>`). */
export { REPLACES_HEADER } from './outbox-relay.js';
/** An unpublishable outbox row as the onUnpublishable hook gets it. */
export type { UnpublishableOutboxRow } from './outbox-relay.js';
/** The hook that turns an unpublishable row into replacement outbox messages. */
export type { UnpublishableHook } from './outbox-relay.js';
/** A publish error that can never succeed, as a non-retryable TandemError (null: retry). */
export { permanentPublishError } from './bus.js';
/** Reads a STREAM.MSG.GET reply: sequence and Nats-Msg-Id, 'none' for a 404 (used by `Bus.findPublished`). */
export { readStoredMessage } from './bus.js';

/** The claim-check header (`Tandem-Claim-Check: <outbox id>`). */
export { CLAIM_CHECK_HEADER } from './claim-check.js';
/** Default claim-check threshold (256 KiB of serialized payload). */
export { DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES } from './claim-check.js';
/** The claim-check body for an outbox id and the real payload's size. */
export { claimCheckBody } from './claim-check.js';
/** The claim-check body's shape. */
export type { ClaimCheckBody } from './claim-check.js';
/** Loads a claim-checked message's payload from its outbox row (the consumer's first step). */
export { resolveClaimCheck } from './claim-check.js';
/** What resolveClaimCheck returns. */
export type { ClaimCheckResolution } from './claim-check.js';

/** The header JetStream deduplicates on (`Nats-Msg-Id`). */
export { MSG_ID_HEADER } from './headers.js';

/** The five services that connect to NATS (each is also its NATS user). */
export { NatsServices } from './topology.js';
/** One of the five services. */
export type { NatsService } from './topology.js';
/** Every service's consumers, published subjects, subscriptions and queries: the one list. */
export { ServiceTopologies } from './topology.js';
/** What one service does on NATS. */
export type { ServiceTopology } from './topology.js';
/** One declared durable consumer: durable, subject, ack wait. */
export type { DurableConsumerSpec } from './topology.js';
/** Settings consumer settings derive from: maxDeliver (TANDEM_MAX_DELIVER), ackWaitMs (TANDEM_ACK_WAIT_MS). */
export type { ConsumerSettings } from './topology.js';
/** The defaults of ConsumerSettings (the services' config defaults). */
export { DEFAULT_CONSUMER_SETTINGS } from './topology.js';
/** Subjects outside systems may publish (task intake and cancel). */
export { ExternalPublishes } from './topology.js';
/** Subjects outside systems may subscribe to (task outcomes). */
export { ExternalSubscribes } from './topology.js';
/** Every declared durable consumer with its service. */
export { durableConsumers } from './topology.js';
/** The declared ack wait of one service's durable under given settings. */
export { ackWaitMsOf } from './topology.js';
/** True when a name is one of the five services. */
export { isNatsService } from './topology.js';

/** The NATS user of the provisioning step. */
export { PROVISIONER_USER } from './permissions.js';
/** Validates a NATS user name (letters, digits, '_', '-'). */
export { assertNatsUserName } from './permissions.js';
/** The inbox prefix of a user's connection (`_INBOX.<user>`). */
export { inboxPrefixFor } from './permissions.js';
/** A service's NATS permissions, derived from its topology. */
export { servicePermissions } from './permissions.js';
/** An outside system's NATS permissions. */
export { externalPermissions } from './permissions.js';
/** The provisioner's NATS permissions. */
export { provisionerPermissions } from './permissions.js';
/** Every user of a deployment: services, provisioner, outside systems. */
export { tandemNatsUsers } from './permissions.js';
/** Renders a nats-server config with JetStream and the given users (no anonymous access). */
export { renderNatsServerConfig } from './permissions.js';
/** Publish/subscribe permissions of one NATS user. */
export type { NatsPermissions } from './permissions.js';
/** A password in a generated config (env reference or value). */
export type { NatsPasswordRef } from './permissions.js';
/** One user of a generated nats-server config. */
export type { NatsUserEntry } from './permissions.js';
/** Options of renderNatsServerConfig. */
export type { NatsServerConfigOptions } from './permissions.js';

/** Creates or updates every stream and declared durable consumer (run as the provisioner). */
export { provisionNats } from './provision.js';
/** Options of provisionNats. */
export type { ProvisionOptions } from './provision.js';
/** What provisionNats did per stream and consumer. */
export type { ProvisionResult } from './provision.js';
/** The stream and config of one declared consumer under a prefix. */
export { provisionedConsumerFor } from './provision.js';
/** The consumer config bus.consume creates. */
export { managedConsumerConfig } from './provision.js';
/** The settings of a durable consumer the bus manages. */
export type { ManagedConsumerConfig } from './provision.js';
