import { randomUUID } from 'node:crypto';
import { StepFinished, createEnvelope } from '@tandem/contracts';
import { createDb, enqueueOutbox, migrate, transaction, type Db, type OutboxMessage } from '@tandem/db';
import {
  cleanupNatsPrefix,
  createTestDatabase,
  createTestPrefix,
  findNats,
  type TestDatabase,
} from '@tandem/testing';
import { pino, type Logger } from 'pino';
import { connectBus, type Bus, type DeadLetterInfo } from '../src/index.js';

/** Everything one test file needs: its own prefix, database and bus. */
export interface Harness {
  natsUrl: string;
  prefix: string;
  database: TestDatabase;
  db: Db;
  /**
   * A second pool on the same database that no relay is registered on: rows enqueued through it (as another
   * process would) are not handed over, so only the relays' polls and kicks find them.
   */
  outsideDb: Db;
  bus: Bus;
  log: Logger;
  deadLetters: DeadLetterInfo[];
  /** Another bus on the same prefix and database (a second replica); closed by `close()`. */
  connectAnother(): Promise<Bus>;
  close(): Promise<void>;
}

/** A quiet logger; set LOG_LEVEL=debug to see what the bus logs. */
export function testLogger(): Logger {
  return pino({ level: process.env['LOG_LEVEL'] ?? 'silent' });
}

/** Creates a test prefix, a migrated `test_...` database and a connected bus. */
export async function createHarness(): Promise<Harness> {
  const natsUrl = (await findNats()).url;
  const prefix = createTestPrefix();
  const database = await createTestDatabase({
    migrate: async (url) => {
      await migrate({ url });
    },
  });
  const log = testLogger();
  const db = createDb({ url: database.url, poolMax: 4 });
  const outsideDb = createDb({ url: database.url, poolMax: 2 });
  const deadLetters: DeadLetterInfo[] = [];
  const others: Bus[] = [];
  const connectOne = (): Promise<Bus> =>
    connectBus({
      servers: natsUrl,
      prefix,
      name: 'bus-test',
      log,
      db,
      onDeadLetter: (info) => deadLetters.push(info),
    });
  const bus = await connectOne();
  return {
    natsUrl,
    prefix,
    database,
    db,
    outsideDb,
    bus,
    log,
    deadLetters,
    async connectAnother() {
      const other = await connectOne();
      others.push(other);
      return other;
    },
    async close() {
      await Promise.allSettled([bus.drain(), ...others.map((other) => other.drain())]);
      await db.close();
      await outsideDb.close();
      await cleanupNatsPrefix(natsUrl, prefix);
      await database.drop();
    },
  };
}

/** A valid `step.finished.v1` envelope. */
export function stepFinished(overrides: { key?: string; id?: string } = {}) {
  const taskId = randomUUID();
  return createEnvelope(
    StepFinished,
    { taskId, stepId: randomUUID(), key: overrides.key ?? 'step-1', tool: 'respond', status: 'completed' },
    { correlationId: taskId, ...(overrides.id === undefined ? {} : { id: overrides.id }) },
  );
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A promise with its resolver outside. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/** Enqueues outbox rows in one typed transaction on `db` (handed to the pool's relay, if it has one). */
export async function enqueueOn(db: Db, messages: OutboxMessage | readonly OutboxMessage[]): Promise<void> {
  await transaction(db, (tx) => enqueueOutbox(tx, messages));
}

/** A consumer's dead letters in stream order (as stored: streamSeq is int8 text, createdAt a Date). */
export function deadLettersOf(db: Db, consumer: string) {
  return db.kysely
    .selectFrom('DeadLetter')
    .selectAll()
    .where('consumer', '=', consumer)
    .orderBy('streamSeq', 'asc')
    .execute();
}

/** A stored DeadLetter row as `deadLettersOf` reads it. */
export type StoredDeadLetter = Awaited<ReturnType<typeof deadLettersOf>>[number];

/** One outbox row by id, or undefined. */
export function outboxRow(db: Db, id: string) {
  return db.kysely.selectFrom('Outbox').selectAll().where('id', '=', id).executeTakeFirst();
}
