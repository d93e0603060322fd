import {
  AckPolicy,
  DeliverPolicy,
  ReplayPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { ErrorCodes, TandemError, consumerNameFor, streamNameFor, subjectFor } from '@tandem/contracts';
import type { Logger } from 'pino';
import { ensureStreams, entityOfSuffix, hasApiCode, type StreamChange } from './streams.js';
import { durableConsumers, type ConsumerSettings, type DurableConsumerSpec } from './topology.js';

// JetStream API error codes (nats-server's jetstream_errors_generated.go).
const CONSUMER_NOT_FOUND = 10014;
const STREAM_NOT_FOUND = 10059;
const CONSUMER_ALREADY_EXISTS = 10148;
const CONSUMER_NAME_EXISTS = 10013;

/** The settings of a durable consumer that the bus manages; the same the consumer framework creates. */
export type ManagedConsumerConfig = Required<
  Pick<
    ConsumerConfig,
    | 'durable_name'
    | 'ack_policy'
    | 'ack_wait'
    | 'max_deliver'
    | 'filter_subject'
    | 'deliver_policy'
    | 'replay_policy'
  >
>;

/** The config of a durable pull consumer as `bus.consume` creates it (explicit acks, from the start). */
export function managedConsumerConfig(options: {
  name: string;
  filterSubject: string;
  ackWaitMs: number;
  maxDeliver: number;
}): ManagedConsumerConfig {
  return {
    durable_name: options.name,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(options.ackWaitMs),
    max_deliver: options.maxDeliver,
    filter_subject: options.filterSubject,
    deliver_policy: DeliverPolicy.All,
    replay_policy: ReplayPolicy.Instant,
  };
}

/** The stream and config of one declared durable consumer under a prefix. */
export function provisionedConsumerFor(
  prefix: string,
  spec: DurableConsumerSpec,
  settings: ConsumerSettings,
): { stream: string; config: ManagedConsumerConfig } {
  return {
    stream: streamNameFor(prefix, entityOfSuffix(spec.subject)),
    config: managedConsumerConfig({
      name: consumerNameFor(prefix, spec.durable),
      filterSubject: subjectFor(prefix, spec.subject),
      ackWaitMs: spec.ackWaitMs(settings),
      maxDeliver: settings.maxDeliver,
    }),
  };
}

/** Options of {@link provisionNats}. */
export interface ProvisionOptions {
  prefix: string;
  settings: ConsumerSettings;
  /** Stream retention (default 7 days). */
  streamMaxAgeMs?: number;
  /** Stream replicas (default 1; `TANDEM_STREAM_REPLICAS`): raised to this count, never lowered. */
  streamReplicas?: number;
}

/** What {@link provisionNats} did to each stream and each consumer (by JetStream name). */
export interface ProvisionResult {
  streams: Record<string, StreamChange>;
  consumers: Record<string, StreamChange>;
}

/**
 * Creates or updates every stream and every declared durable consumer (topology.ts). Idempotent; run it
 * with a user that has the JetStream API rights (the provisioner), before services that connect with
 * credentials start: they have no right to create either.
 */
export async function provisionNats(
  jsm: JetStreamManager,
  options: ProvisionOptions,
): Promise<ProvisionResult> {
  const streams = await ensureStreams(jsm, {
    prefix: options.prefix,
    maxAgeMs: options.streamMaxAgeMs,
    replicas: options.streamReplicas,
  });
  const consumers: Record<string, StreamChange> = {};
  for (const spec of durableConsumers()) {
    const { stream, config } = provisionedConsumerFor(options.prefix, spec, options.settings);
    consumers[config.durable_name] = await ensureManagedConsumer(jsm, stream, config);
  }
  return { streams, consumers };
}

async function ensureManagedConsumer(
  jsm: JetStreamManager,
  stream: string,
  config: ManagedConsumerConfig,
): Promise<StreamChange> {
  const current = await consumerInfo(jsm, stream, config.durable_name);
  if (current !== null && sameManagedSettings(current, config)) return 'unchanged';
  await ensureConsumer(jsm, stream, config);
  return current === null ? 'created' : 'updated';
}

function sameManagedSettings(info: ConsumerInfo, config: ManagedConsumerConfig): boolean {
  return (
    info.config.filter_subject === config.filter_subject &&
    info.config.ack_wait === config.ack_wait &&
    info.config.max_deliver === config.max_deliver
  );
}

async function consumerInfo(
  jsm: JetStreamManager,
  stream: string,
  name: string,
): Promise<ConsumerInfo | null> {
  try {
    return await jsm.consumers.info(stream, name);
  } catch (error) {
    if (hasApiCode(error, CONSUMER_NOT_FOUND) || hasApiCode(error, STREAM_NOT_FOUND)) return null;
    throw error;
  }
}

/**
 * For a bus connected with credentials: checks that the durable consumer was provisioned instead of
 * creating it (the service has no right to). A missing consumer or one filtering another subject is a
 * `BUS.NOT_PROVISIONED` error; a differing ack wait or max deliver is logged and the server's kept.
 */
export async function checkProvisionedConsumer(
  jsm: JetStreamManager,
  stream: string,
  config: Partial<ConsumerConfig> & { durable_name: string },
  log: Logger,
): Promise<void> {
  const name = config.durable_name;
  let info: ConsumerInfo | null;
  try {
    info = await consumerInfo(jsm, stream, name);
  } catch (error) {
    if (!(error instanceof Error && /permissions violation/i.test(error.message))) throw error;
    throw new TandemError(
      ErrorCodes.BUS_NOT_PROVISIONED,
      `this NATS user may not read consumer ${name} on stream ${stream}: it is not one of its consumers in ` +
        'the server config (generated from packages/bus/src/topology.ts)',
      { cause: error },
    );
  }
  if (info === null) {
    throw new TandemError(
      ErrorCodes.BUS_NOT_PROVISIONED,
      `consumer ${name} on stream ${stream} does not exist; declare it in packages/bus/src/topology.ts ` +
        'and run pnpm nats:provision (a service connected with credentials may not create consumers)',
    );
  }
  if (info.config.filter_subject !== config.filter_subject) {
    throw new TandemError(
      ErrorCodes.BUS_NOT_PROVISIONED,
      `consumer ${name} filters ${String(info.config.filter_subject)}, the service consumes ` +
        `${String(config.filter_subject)}; fix packages/bus/src/topology.ts and run pnpm nats:provision`,
    );
  }
  if (info.config.ack_wait !== config.ack_wait || info.config.max_deliver !== config.max_deliver) {
    log.warn(
      {
        consumer: name,
        server: { ackWait: info.config.ack_wait, maxDeliver: info.config.max_deliver },
        service: { ackWait: config.ack_wait, maxDeliver: config.max_deliver },
      },
      'provisioned consumer settings differ from the service settings; run pnpm nats:provision with the same settings',
    );
  }
}

/** Creates a durable consumer, or updates the settings Tandem manages on one that exists. */
export async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  config: Partial<ConsumerConfig> & { durable_name: string },
): Promise<void> {
  try {
    // nats-server 2.9 updates an existing durable on create; 2.10+ refuses a differing config, so update then.
    await jsm.consumers.add(stream, config);
  } catch (error) {
    if (!hasApiCode(error, CONSUMER_ALREADY_EXISTS) && !hasApiCode(error, CONSUMER_NAME_EXISTS)) throw error;
    await jsm.consumers.update(stream, config.durable_name, {
      ack_wait: config.ack_wait,
      max_deliver: config.max_deliver,
      filter_subject: config.filter_subject,
    });
  }
}
