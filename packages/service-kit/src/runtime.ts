import {
  connectBus,
  createOutboxRelay,
  startConsumer,
  type Bus,
  type ConsumerDefinition,
  type ConsumerDelivery,
  type OutboxRelay,
  type RunningConsumer,
} from '@tandem/bus';
import { createDb, pingDatabase, type Db } from '@tandem/db';
import { natsConnectionSettings, natsServers, type BaseConfig } from './config.js';
import { databaseAuth } from './auth.js';
import { createHttpServer, type HttpServer, type ReadinessCheck } from './http.js';
import { createLogger, type Log } from './logger.js';
import { createMetrics, type ServiceMetrics } from './metrics.js';

/** Everything a service's composition root wires together. */
export interface ServiceRuntime {
  service: string;
  log: Log;
  db: Db;
  bus: Bus;
  metrics: ServiceMetrics;
  relay: OutboxRelay;
  http: HttpServer;
  /**
   * Starts a declared consumer (`consumersOf(...)`) with the service's dependencies: per-consumer
   * metrics, the ack wait of TANDEM_ACK_WAIT_MS and `delivery` (concurrency, ...) from the config.
   */
  start: <TDeps, TMessage>(
    definition: ConsumerDefinition<TDeps, TMessage>,
    deps: TDeps,
    delivery?: ConsumerDelivery,
  ) => Promise<RunningConsumer>;
  /** Registers a stop step; steps run in reverse order of registration. */
  onStop: (step: () => Promise<void>) => void;
  /** Starts the relay and the HTTP server; resolves with the bound port. */
  listen: (port: number, host: string) => Promise<number>;
  /** Stops consumers, HTTP, relay, bus and database, in that order. */
  stop: () => Promise<void>;
}

/** Default age of the oldest waiting outbox row past which `/readyz` says the relay is not draining: 30 s. */
export const DEFAULT_OUTBOX_STALE_AFTER_MS = 30_000;

/** The readiness check of the outbox relay: ready while the oldest waiting row is younger than `staleAfterMs`. */
export function outboxReadiness(
  relay: Pick<OutboxRelay, 'oldestUnpublishedAgeMs'>,
  staleAfterMs: number,
): ReadinessCheck {
  return async () => {
    try {
      const ageMs = await relay.oldestUnpublishedAgeMs();
      if (ageMs === null || ageMs <= staleAfterMs) return { name: 'outbox', ok: true };
      return {
        name: 'outbox',
        ok: false,
        detail: `the oldest unpublished outbox row has waited ${Math.round(ageMs / 1000)} s (limit ${Math.round(staleAfterMs / 1000)} s): the relay is not draining`,
      };
    } catch (error) {
      return { name: 'outbox', ok: false, detail: error instanceof Error ? error.message : String(error) };
    }
  };
}

/**
 * Connects the database and the bus, creates metrics, the outbox relay and the HTTP server with health
 * endpoints and bearer-token auth (ApiToken rows). The caller registers its consumers and routes, then
 * calls `listen`.
 */
export async function createServiceRuntime(options: {
  service: string;
  config: BaseConfig;
  log?: Log;
  readiness?: ReadinessCheck[];
  /**
   * `/readyz` reports the outbox relay as not draining when this service's oldest row that is neither
   * published nor dead-lettered has waited longer than this (default 30 s).
   */
  outboxStaleAfterMs?: number;
}): Promise<ServiceRuntime> {
  const { config, service } = options;
  const log =
    options.log ?? createLogger({ service, level: config.LOG_LEVEL, logContent: config.TANDEM_LOG_CONTENT });
  const metrics = createMetrics(service);
  const db = createDb({
    url: config.DATABASE_URL,
    poolMax: config.TANDEM_DB_POOL_MAX,
    log,
    preparedStatements: config.TANDEM_DB_PREPARED_STATEMENTS,
  });
  let bus: Bus;
  const nats = natsConnectionSettings(config);
  try {
    bus = await connectBus({
      // A cluster's servers, comma-separated (nats.js would take the whole string for one URL).
      servers: natsServers(config.NATS_URL),
      connection: nats.connection,
      provisioned: nats.provisioned,
      prefix: config.TANDEM_SUBJECT_PREFIX,
      name: service,
      log,
      db,
      streamReplicas: config.TANDEM_STREAM_REPLICAS,
      onDeadLetter: (info) => {
        metrics.deadLetters.inc({ consumer: info.consumer, code: info.code });
      },
    });
  } catch (error) {
    await db.close();
    throw error;
  }
  // Once started, rows committed through plain-SQL transactions are inserted claimed by the relay and go
  // to it directly, without being read back.
  const relay = createOutboxRelay({
    db,
    bus,
    publisher: service,
    log,
    pollIntervalMs: 500,
    onDeadLetter: (info) => {
      metrics.deadLetters.inc({ consumer: info.consumer, code: info.code });
    },
  });
  const readiness: ReadinessCheck[] = [
    async () => {
      try {
        await pingDatabase(db);
        return { name: 'postgres', ok: true };
      } catch (error) {
        return {
          name: 'postgres',
          ok: false,
          detail: error instanceof Error ? error.message : String(error),
        };
      }
    },
    async () => ({
      name: 'nats',
      ok: !bus.nc.isClosed(),
      ...(bus.nc.isClosed() ? { detail: 'connection closed' } : {}),
    }),
    outboxReadiness(relay, options.outboxStaleAfterMs ?? DEFAULT_OUTBOX_STALE_AFTER_MS),
    ...(options.readiness ?? []),
  ];
  // Every service's API needs a bearer token; there is deliberately no setting to turn it off.
  const http = createHttpServer({ log, registry: metrics.registry, readiness, auth: databaseAuth(db) });
  const stopSteps: Array<() => Promise<void>> = [];
  let stopping: Promise<void> | undefined;

  return {
    service,
    log,
    db,
    bus,
    metrics,
    relay,
    http,
    start: (definition, deps, delivery = {}) =>
      startConsumer(
        {
          bus,
          db,
          around: async (durable, handle) => {
            const end = metrics.handlerSeconds.startTimer({ consumer: durable });
            try {
              await handle();
              metrics.messagesHandled.inc({ consumer: durable, outcome: 'ok' });
            } catch (error) {
              metrics.messagesHandled.inc({ consumer: durable, outcome: 'error' });
              throw error;
            } finally {
              end();
            }
          },
        },
        definition,
        deps,
        { ackWaitMs: config.TANDEM_ACK_WAIT_MS, maxDeliver: config.TANDEM_MAX_DELIVER, ...delivery },
      ),
    onStop: (step) => {
      stopSteps.push(step);
    },
    listen: async (port, host) => {
      relay.start();
      await http.listen({ port, host });
      const address = http.server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : port;
      log.info({ port: bound, host }, `${service} listening`);
      return bound;
    },
    stop: () => {
      stopping ??= (async () => {
        for (const step of [...stopSteps].reverse()) {
          try {
            await step();
          } catch (error) {
            log.error({ err: error }, 'stop step failed');
          }
        }
        await http.close();
        await relay.stop();
        await bus.drain();
        await db.close();
      })();
      return stopping;
    },
  };
}
