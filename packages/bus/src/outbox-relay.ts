import { fetchUnpublished, markPublished, recordPublishFailure, type Db } from '@tandem/db';
import type { Logger } from 'pino';
import type { Bus } from './bus.js';

/** Options of {@link createOutboxRelay}. */
export interface OutboxRelayOptions {
  db: Db;
  /** Only `publish` is used. */
  bus: Pick<Bus, 'publish'>;
  /** The service whose outbox rows this relay publishes. */
  publisher: string;
  /** Rows read per batch (default 100). */
  batchSize?: number;
  /** How often the relay looks for rows without being kicked (default 1000 ms). */
  pollIntervalMs?: number;
  log: Logger;
}

/** Publishes a service's outbox rows to JetStream, in order, with `Nats-Msg-Id` = outbox id. */
export interface OutboxRelay {
  /** Starts polling (and publishes what is already waiting). */
  start(): void;
  /** Asks for a batch now, e.g. after a transaction that enqueued rows committed; concurrent kicks coalesce. */
  kick(): void;
  /** Stops polling and waits for the batch in flight. */
  stop(): Promise<void>;
}

type BatchOutcome = 'more' | 'drained' | 'failed';

/**
 * Creates the relay. Each batch reads unpublished rows oldest first with no transaction open,
 * publishes them one by one (awaiting each PubAck), then marks the published ones in one update.
 * A failed publish is recorded on its row and ends the batch, so a later row never overtakes an
 * earlier one; the next tick retries. A crash between publish and mark republishes rows, which
 * JetStream drops as duplicates of their msgId (within the 2-minute window).
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const batchSize = options.batchSize ?? 100;
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isFinite(pollIntervalMs) || pollIntervalMs < 1)
    throw new RangeError(`pollIntervalMs must be positive, got ${pollIntervalMs}`);
  const log = options.log.child({ component: 'outbox-relay', publisher: options.publisher });

  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let kickedWhileRunning = false;

  async function runBatch(): Promise<BatchOutcome> {
    const rows = await fetchUnpublished(options.db, options.publisher, batchSize);
    if (rows.length === 0) return 'drained';
    const published: string[] = [];
    let failed = false;
    for (const row of rows) {
      try {
        await options.bus.publish(row.subject, row.payload, { msgId: row.id, headers: row.headers });
        published.push(row.id);
      } catch (error) {
        failed = true;
        log.warn(
          { err: error, outboxId: row.id, subject: row.subject, attempts: row.attempts + 1 },
          'outbox publish failed; will retry',
        );
        try {
          await recordPublishFailure(options.db, row.id, error);
        } catch (recordError) {
          log.error({ err: recordError, outboxId: row.id }, 'could not record an outbox publish failure');
        }
        break;
      }
    }
    if (published.length > 0) await markPublished(options.db, published);
    if (failed) return 'failed';
    return rows.length === batchSize ? 'more' : 'drained';
  }

  async function drain(): Promise<void> {
    do {
      kickedWhileRunning = false;
      let outcome: BatchOutcome = 'more';
      while (running && outcome === 'more') {
        try {
          outcome = await runBatch();
        } catch (error) {
          log.error({ err: error }, 'outbox relay batch failed; will retry');
          outcome = 'failed';
        }
      }
      // After a failure wait for the next tick rather than spin on kicks.
      if (outcome === 'failed') return;
    } while (running && kickedWhileRunning);
  }

  function kick(): void {
    if (!running) return;
    if (current !== undefined) {
      kickedWhileRunning = true;
      return;
    }
    current = drain().finally(() => {
      current = undefined;
    });
  }

  return {
    start() {
      if (running) return;
      running = true;
      timer = setInterval(kick, pollIntervalMs);
      // The NATS connection keeps a service alive; the poll timer alone must not.
      timer.unref();
      kick();
    },
    kick,
    async stop() {
      running = false;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await current;
    },
  };
}
