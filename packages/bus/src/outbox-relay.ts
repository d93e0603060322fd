import {
  fetchUnpublished,
  markPublished,
  prismaOutboxWrites,
  recordPublishFailure,
  type Db,
  type OutboxMessage,
} from '@tandem/db';
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
  /** Reads and publishes a batch now; concurrent kicks coalesce. */
  kick(): void;
  /**
   * After a transaction that enqueued rows committed: reads the table only when rows were written through
   * Prisma since the last read (rows of plain-SQL transactions were handed over by {@link OutboxRelay.offer};
   * the poll reads the table regardless).
   */
  nudge(): void;
  /** Publishes rows that just committed (handed over by `onOutboxCommitted`), then marks them published. */
  offer(messages: readonly OutboxMessage[]): void;
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
  let prismaWritesSeen = -1;
  let offered: Promise<void> = Promise.resolve();
  /** Ids handed over and not yet marked: a read in the meantime skips them instead of publishing twice. */
  const handedOver = new Set<string>();

  let pendingMarks: string[] = [];
  let marking: Promise<void> | undefined;

  /** Marks published rows, coalescing the ids of every hand-over that finished meanwhile into one update. */
  function markSoon(ids: readonly string[]): void {
    pendingMarks.push(...ids);
    if (marking !== undefined) return;
    marking = (async () => {
      while (pendingMarks.length > 0) {
        const batch = pendingMarks;
        pendingMarks = [];
        try {
          await markPublished(options.db, batch);
        } catch (error) {
          log.warn({ err: error }, 'could not mark outbox rows published; they will be published again');
        } finally {
          for (const id of batch) handedOver.delete(id);
        }
      }
    })().finally(() => {
      marking = undefined;
    });
  }

  async function publishOffered(messages: readonly OutboxMessage[]): Promise<void> {
    // Sent in order on one connection and awaited together: one round trip for the batch.
    const results = await Promise.allSettled(
      messages.map((message) =>
        options.bus.publish(message.subject, message.payload, {
          msgId: message.id,
          headers: message.headers ?? {},
        }),
      ),
    );
    const published: string[] = [];
    for (const [index, result] of results.entries()) {
      const message = messages[index];
      if (!message) continue;
      if (result.status === 'fulfilled') {
        published.push(message.id);
      } else {
        handedOver.delete(message.id);
        log.warn(
          { err: result.reason, outboxId: message.id },
          'publishing a committed outbox row failed; the relay will read it again',
        );
      }
    }
    markSoon(published);
    if (published.length < messages.length) {
      prismaWritesSeen = -1;
      kick();
    }
  }

  function offer(messages: readonly OutboxMessage[]): void {
    if (!running) return;
    const mine = messages.filter((message) => message.publisher === options.publisher);
    if (mine.length === 0) return;
    for (const message of mine) handedOver.add(message.id);
    offered = offered.then(() => publishOffered(mine));
  }

  async function runBatch(): Promise<BatchOutcome> {
    prismaWritesSeen = prismaOutboxWrites();
    const fetched = await fetchUnpublished(options.db, options.publisher, batchSize);
    const rows = fetched.filter((row) => !handedOver.has(row.id));
    // Rows handed over are being published already; the poll picks up anything they leave behind.
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

  function nudge(): void {
    // Nothing was written through Prisma since the last read: committed plain-SQL rows were handed over.
    if (prismaWritesSeen === prismaOutboxWrites()) return;
    kick();
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
    nudge,
    offer,
    async stop() {
      running = false;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await current;
      await offered;
      await marking;
    },
  };
}
