import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PGliteWireServer } from '../src/pglite-server.js';

// One in-memory PGlite served over the wire protocol; every test uses its own table and connections.

let db: PGlite;
let server: PGliteWireServer;
let port: number;
const opened: pg.Client[] = [];
const pools: pg.Pool[] = [];
const sockets: Socket[] = [];

function connectionConfig(): pg.ClientConfig {
  return {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    database: 'postgres',
    ssl: false,
    connectionTimeoutMillis: 5000,
  };
}

async function client(): Promise<pg.Client> {
  const created = new pg.Client(connectionConfig());
  // A client the server drops on purpose must not crash the test run with an unhandled 'error'.
  created.on('error', () => undefined);
  opened.push(created);
  await created.connect();
  return created;
}

function pool(max: number): pg.Pool {
  const created = new pg.Pool({ ...connectionConfig(), max });
  created.on('error', () => undefined);
  pools.push(created);
  return created;
}

let tableCounter = 0;

/** A fresh table for one test, created over the wire like the services do it. */
async function freshTable(columns: string): Promise<string> {
  tableCounter += 1;
  const name = `t_${tableCounter}_${process.pid}`;
  const setup = await client();
  await setup.query(`CREATE TABLE ${name} (${columns})`);
  await setup.end();
  return name;
}

/** Resolves with the result, or rejects after `ms` so a deadlocked server fails the test instead of hanging it. */
async function within<T>(ms: number, description: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${description} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

beforeAll(async () => {
  db = new PGlite();
  await db.waitReady;
  server = new PGliteWireServer(db);
  port = await server.listen(0);
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((entry) => entry.end().catch(() => undefined)));
  await Promise.all(pools.splice(0).map((entry) => entry.end().catch(() => undefined)));
  for (const socket of sockets.splice(0)) socket.destroy();
});

afterAll(async () => {
  await server.close();
  await db.close();
});

// --- A minimal wire-protocol client, to control exactly which bytes arrive when. ---

function startupMessage(): Buffer {
  const parameters = Buffer.from('user\0postgres\0database\0postgres\0\0', 'utf8');
  const message = Buffer.alloc(8 + parameters.length);
  message.writeInt32BE(message.length, 0);
  message.writeInt32BE(196608, 4);
  parameters.copy(message, 8);
  return message;
}

function requestCode(code: number): Buffer {
  const message = Buffer.alloc(8);
  message.writeInt32BE(8, 0);
  message.writeInt32BE(code, 4);
  return message;
}

function frontend(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([header, body]);
}

function cstring(text: string): Buffer {
  return Buffer.from(`${text}\0`, 'utf8');
}

function int16(value: number): Buffer {
  const buffer = Buffer.alloc(2);
  buffer.writeInt16BE(value, 0);
  return buffer;
}

function int32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(value, 0);
  return buffer;
}

/** Parse + Bind of the unnamed statement and portal, with text parameters. */
function parseAndBind(sql: string, parameters: string[]): Buffer {
  const values = parameters.flatMap((value) => {
    const bytes = Buffer.from(value, 'utf8');
    return [int32(bytes.length), bytes];
  });
  return Buffer.concat([
    frontend('P', Buffer.concat([cstring(''), cstring(sql), int16(0)])),
    frontend(
      'B',
      Buffer.concat([cstring(''), cstring(''), int16(0), int16(parameters.length), ...values, int16(0)]),
    ),
  ]);
}

/** Describe + Execute of the unnamed portal, then Sync. */
function executeAndSync(): Buffer {
  return Buffer.concat([
    frontend('D', Buffer.concat([Buffer.from('P', 'latin1'), cstring('')])),
    frontend('E', Buffer.concat([cstring(''), int32(0)])),
    frontend('S', Buffer.alloc(0)),
  ]);
}

interface BackendMessage {
  type: string;
  body: Buffer;
}

interface RawConnection {
  socket: Socket;
  /** The next `bytes` raw bytes (before startup: the SSL answer). */
  read: (bytes: number) => Promise<Buffer>;
  /** Messages up to and including ReadyForQuery. */
  untilReady: () => Promise<BackendMessage[]>;
}

async function rawSocket(): Promise<RawConnection> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  let buffered = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    wake?.();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  const read = async (bytes: number): Promise<Buffer> => {
    const deadline = Date.now() + 5000;
    while (buffered.length < bytes) {
      if (Date.now() > deadline) throw new Error(`expected ${bytes} bytes, got ${buffered.length}`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
    }
    const head = buffered.subarray(0, bytes);
    buffered = buffered.subarray(bytes);
    return head;
  };
  const untilReady = async (): Promise<BackendMessage[]> => {
    const messages: BackendMessage[] = [];
    for (;;) {
      const header = await read(5);
      const type = header.toString('latin1', 0, 1);
      const body = await read(header.readInt32BE(1) - 4);
      messages.push({ type, body });
      if (type === 'Z') return messages;
    }
  };
  return { socket, read, untilReady };
}

/** A raw connection past startup (trust authentication). */
async function rawSession(): Promise<RawConnection> {
  const connection = await rawSocket();
  connection.socket.write(startupMessage());
  const startup = await connection.untilReady();
  expect(startup[0]?.type).toBe('R');
  return connection;
}

/** The text values of the DataRows in a reply; an ErrorResponse becomes `error: <message>`. */
function rowsOf(messages: BackendMessage[]): string[][] {
  const rows: string[][] = [];
  for (const message of messages) {
    if (message.type === 'E') {
      const fields = message.body.toString('utf8').split('\0');
      rows.push([`error: ${fields.find((field) => field.startsWith('M'))?.slice(1) ?? 'unknown'}`]);
    }
    if (message.type !== 'D') continue;
    const columns = message.body.readInt16BE(0);
    let offset = 2;
    const row: string[] = [];
    for (let column = 0; column < columns; column += 1) {
      const length = message.body.readInt32BE(offset);
      offset += 4;
      row.push(length < 0 ? 'NULL' : message.body.toString('utf8', offset, offset + length));
      offset += Math.max(length, 0);
    }
    rows.push(row);
  }
  return rows;
}

describe('PGliteWireServer: many connections', () => {
  it('answers many concurrent parameterised queries from 6 connections, each with its own result', async () => {
    const clients = await Promise.all(Array.from({ length: 6 }, () => client()));
    const checked: number[] = [];
    // Each connection runs its queries back to back while the others do the same: the server sees
    // Parse/Bind/Execute/Sync units from 6 sockets at once. Different statement shapes per connection make a
    // Bind that lands on another connection's Parse show up as a wrong answer or an error.
    const work = clients.map(async (connection, clientIndex) => {
      for (let queryIndex = 0; queryIndex < 40; queryIndex += 1) {
        const n = clientIndex * 1000 + queryIndex;
        if (clientIndex % 3 === 0) {
          const result = await connection.query<{ doubled: number; tag: string }>(
            'SELECT $1::int * 2 AS doubled, $2::text AS tag',
            [n, `c${clientIndex}`],
          );
          expect(result.rows).toEqual([{ doubled: n * 2, tag: `c${clientIndex}` }]);
        } else if (clientIndex % 3 === 1) {
          const result = await connection.query<{ joined: string }>(
            'SELECT $1::text || $2::text || $3::text AS joined',
            [`a${n}`, '-', `z${clientIndex}`],
          );
          expect(result.rows).toEqual([{ joined: `a${n}-z${clientIndex}` }]);
        } else {
          const length = (queryIndex % 4) + 1;
          const result = await connection.query<{ n: number; squares: number[] }>(
            'SELECT $1::int AS n, ARRAY(SELECT g * g FROM generate_series(1, $2::int) AS g) AS squares',
            [n, length],
          );
          expect(result.rows).toEqual([
            { n, squares: Array.from({ length }, (_, index) => (index + 1) ** 2) },
          ]);
        }
        checked.push(n);
      }
    });
    await within(20_000, 'the concurrent queries', Promise.all(work));
    expect(checked).toHaveLength(240);
    expect(new Set(checked).size).toBe(240);
  });

  it("does not let another connection's Parse/Bind land between one connection's Parse/Bind and its Execute", async () => {
    const [a, b] = await Promise.all([rawSession(), rawSession()]);
    // A sends Parse + Bind of the unnamed statement and portal, and nothing more yet.
    a.socket.write(parseAndBind('SELECT $1::text AS v', ['from a']));
    await sleep(50);
    // B runs a whole extended query on its own unnamed statement and portal meanwhile.
    b.socket.write(Buffer.concat([parseAndBind('SELECT $1::int * 10 AS v', ['7']), executeAndSync()]));
    expect(rowsOf(await b.untilReady())).toEqual([['70']]);
    // A's Execute must still run A's statement with A's parameter.
    a.socket.write(executeAndSync());
    expect(rowsOf(await a.untilReady())).toEqual([['from a']]);
  });

  it('keeps large parameterised messages that span many TCP reads apart', async () => {
    const clients = await Promise.all(Array.from({ length: 4 }, () => client()));
    const work = clients.map(async (connection, clientIndex) => {
      for (let queryIndex = 0; queryIndex < 10; queryIndex += 1) {
        const n = clientIndex * 100 + queryIndex;
        const big = String.fromCharCode(97 + clientIndex).repeat(150_000 + n);
        const result = await connection.query<{ len: number; n: number; head: string }>(
          'SELECT length($1::text) AS len, $2::int AS n, left($1::text, 3) AS head',
          [big, n],
        );
        expect(result.rows).toEqual([{ len: 150_000 + n, n, head: big.slice(0, 3) }]);
      }
    });
    await within(20_000, 'the large queries', Promise.all(work));
  });

  it('keeps concurrent parameterised inserts from a pool apart', async () => {
    const table = await freshTable('id int PRIMARY KEY, owner text NOT NULL, payload jsonb NOT NULL');
    const shared = pool(8);
    await within(
      20_000,
      'the concurrent inserts',
      Promise.all(
        Array.from({ length: 200 }, (_, id) =>
          shared.query(`INSERT INTO ${table} (id, owner, payload) VALUES ($1, $2, $3)`, [
            id,
            `owner-${id % 7}`,
            JSON.stringify({ id, square: id * id }),
          ]),
        ),
      ),
    );
    const rows = await shared.query<{ id: number; owner: string; payload: { id: number; square: number } }>(
      `SELECT id, owner, payload FROM ${table} ORDER BY id`,
    );
    expect(rows.rows).toHaveLength(200);
    for (const row of rows.rows) {
      expect(row.owner).toBe(`owner-${row.id % 7}`);
      expect(row.payload).toEqual({ id: row.id, square: row.id * row.id });
    }
  });

  it('reports an error to its own connection only', async () => {
    const [good, bad] = await Promise.all([client(), client()]);
    const goodWork = (async () => {
      const values: number[] = [];
      for (let index = 0; index < 10; index += 1) {
        const result = await good.query<{ v: number }>('SELECT $1::int AS v', [index]);
        values.push(result.rows[0]?.v ?? -1);
      }
      return values;
    })();
    const badWork = (async () => {
      const errors: string[] = [];
      for (let index = 0; index < 10; index += 1) {
        errors.push(
          await bad.query('SELECT $1::int / 0 AS v', [index]).then(
            () => 'no error',
            (error: unknown) => String(error),
          ),
        );
      }
      return errors;
    })();
    const [values, errors] = await within(10_000, 'the queries', Promise.all([goodWork, badWork]));
    expect(values).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(errors).toHaveLength(10);
    for (const error of errors) expect(error).toContain('division by zero');
    expect((await bad.query<{ ok: number }>('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });
});

describe('PGliteWireServer: transactions', () => {
  it("runs another connection's statements only after a transaction commits, never inside it", async () => {
    const table = await freshTable('v text NOT NULL');
    const [a, b] = await Promise.all([client(), client()]);
    const events: string[] = [];

    await a.query('BEGIN');
    await a.query(`INSERT INTO ${table} (v) VALUES ($1)`, ['a1']);
    events.push('a: inserted');
    const fromB = b.query<{ count: string }>(`SELECT count(*) AS count FROM ${table}`).then((result) => {
      events.push('b: counted');
      return result.rows[0]?.count;
    });
    await sleep(50);
    await a.query(`INSERT INTO ${table} (v) VALUES ($1)`, ['a2']);
    events.push('a: inserted again');
    await sleep(50);
    await a.query('COMMIT');
    events.push('a: committed');

    // B ran after the commit, so it sees both rows (inside A's transaction it would also have seen them, but earlier).
    expect(await within(5000, "B's count", fromB)).toBe('2');
    expect(events).toEqual(['a: inserted', 'a: inserted again', 'a: committed', 'b: counted']);
  });

  it('does not let a rolled-back transaction take statements of another connection with it', async () => {
    const table = await freshTable('v text NOT NULL');
    const [a, b] = await Promise.all([client(), client()]);

    await a.query('BEGIN');
    await a.query(`INSERT INTO ${table} (v) VALUES ($1)`, ['from a']);
    const insertB = b.query(`INSERT INTO ${table} (v) VALUES ($1)`, ['from b']);
    await sleep(50);
    await a.query('ROLLBACK');
    await within(5000, "B's insert", insertB);

    const rows = await b.query<{ v: string }>(`SELECT v FROM ${table} ORDER BY v`);
    expect(rows.rows).toEqual([{ v: 'from b' }]);
  });

  it('keeps a failed transaction to its owner until it rolls back', async () => {
    const table = await freshTable('v int NOT NULL');
    const [a, b] = await Promise.all([client(), client()]);

    await a.query('BEGIN');
    await a.query(`INSERT INTO ${table} (v) VALUES (1)`);
    await expect(a.query('SELECT 1 / 0')).rejects.toThrow(/division by zero/);
    const fromB = b.query<{ count: string }>(`SELECT count(*) AS count FROM ${table}`);
    await sleep(50);
    // Still A's (aborted) transaction: B must not have run into "current transaction is aborted".
    await expect(a.query('SELECT 1')).rejects.toThrow(/current transaction is aborted/);
    await a.query('ROLLBACK');
    expect((await within(5000, "B's count", fromB)).rows).toEqual([{ count: '0' }]);
  });

  it('lets four connections take turns with their own transactions', async () => {
    const table = await freshTable('who text NOT NULL, n int NOT NULL');
    const clients = await Promise.all([client(), client(), client(), client()]);
    await within(
      20_000,
      'the interleaved transactions',
      Promise.all(
        clients.map(async (connection, index) => {
          for (let round = 0; round < 5; round += 1) {
            await connection.query('BEGIN');
            await connection.query(`INSERT INTO ${table} (who, n) VALUES ($1, $2)`, [`c${index}`, round]);
            await sleep(1);
            const mine = await connection.query<{ count: string }>(
              `SELECT count(*) AS count FROM ${table} WHERE who = $1`,
              [`c${index}`],
            );
            expect(mine.rows[0]?.count).toBe(String(round + 1));
            await connection.query(round % 2 === 0 ? 'COMMIT' : 'ROLLBACK');
            if (round % 2 === 1) {
              // The rolled-back row is gone again.
              await connection.query(`INSERT INTO ${table} (who, n) VALUES ($1, $2)`, [`c${index}`, round]);
            }
          }
        }),
      ),
    );
    const counts = await clients[0]?.query<{ who: string; count: string }>(
      `SELECT who, count(*) AS count FROM ${table} GROUP BY who ORDER BY who`,
    );
    expect(counts?.rows).toEqual([
      { who: 'c0', count: '5' },
      { who: 'c1', count: '5' },
      { who: 'c2', count: '5' },
      { who: 'c3', count: '5' },
    ]);
  });
});

describe('PGliteWireServer: disconnects', () => {
  it('drops the queued work of a connection that goes away and serves the others', async () => {
    const table = await freshTable('v text NOT NULL');
    const [a, b, c] = await Promise.all([client(), client(), client()]);

    await a.query('BEGIN');
    await a.query(`INSERT INTO ${table} (v) VALUES ('a')`);
    // B's insert waits behind A's transaction; B then disappears without a goodbye.
    const lost = b.query(`INSERT INTO ${table} (v) VALUES ('b')`).catch((error: unknown) => error);
    const fromC = c.query(`INSERT INTO ${table} (v) VALUES ('c')`);
    await sleep(30);
    b.connection.stream.destroy();
    await sleep(30);
    await a.query('COMMIT');
    await within(5000, "C's insert", fromC);
    expect(await lost).toBeInstanceOf(Error);
    const rows = await c.query<{ v: string }>(`SELECT v FROM ${table} ORDER BY v`);
    expect(rows.rows).toEqual([{ v: 'a' }, { v: 'c' }]);
  });

  it('rolls back a connection that disconnects mid-transaction and serves the others', async () => {
    const table = await freshTable('v text NOT NULL');
    const [a, b] = await Promise.all([client(), client()]);
    await a.query('BEGIN');
    await a.query(`INSERT INTO ${table} (v) VALUES ('lost')`);
    const fromB = b.query<{ count: string }>(`SELECT count(*) AS count FROM ${table}`);
    a.on('error', () => undefined);
    a.connection.stream.destroy();
    expect((await within(5000, "B's count", fromB)).rows).toEqual([{ count: '0' }]);
    await b.end();
  });

  it('survives a malformed startup packet from one client', async () => {
    const body = Buffer.from('nonsense-without-terminators');
    const packet = Buffer.alloc(8 + body.length);
    packet.writeInt32BE(packet.length, 0);
    packet.writeInt32BE(196608, 4);
    body.copy(packet, 8);
    const socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.on('error', () => undefined);
    socket.write(packet);
    await sleep(300);
    socket.destroy();
    const other = await client();
    expect((await within(5000, 'a query after the bad packet', other.query('SELECT 1 AS one'))).rows).toEqual(
      [{ one: 1 }],
    );
    await other.end();
  });

  it('serves the others after a connection ends outside a transaction', async () => {
    const [a, b] = await Promise.all([client(), client()]);
    await a.query('SELECT 1');
    await a.end();
    expect(
      (await within(5000, "B's query", b.query<{ v: number }>('SELECT $1::int AS v', [7]))).rows,
    ).toEqual([{ v: 7 }]);
  });
});

describe('PGliteWireServer: SSL', () => {
  it("answers an SSLRequest with 'N' and then accepts a plain startup", async () => {
    const { socket, read } = await rawSocket();
    socket.write(requestCode(80877103));
    expect((await read(1)).toString('latin1')).toBe('N');
    socket.write(startupMessage());
    // The first answer to a startup is an Authentication message.
    expect((await read(1)).toString('latin1')).toBe('R');
  });

  it("answers a GSSENCRequest with 'N'", async () => {
    const { socket, read } = await rawSocket();
    socket.write(requestCode(80877104));
    expect((await read(1)).toString('latin1')).toBe('N');
  });

  it('works with pg and ssl: false, and refuses a client that requires SSL', async () => {
    const plain = await client();
    expect((await plain.query<{ ok: boolean }>('SELECT true AS ok')).rows).toEqual([{ ok: true }]);

    const secure = new pg.Client({ ...connectionConfig(), ssl: { rejectUnauthorized: false } });
    secure.on('error', () => undefined);
    await expect(secure.connect()).rejects.toThrow(/does not support SSL/);
  });

  it('closes a connection that sends an unknown protocol version', async () => {
    const { socket } = await rawSocket();
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(requestCode(1234));
    await within(5000, 'the server closing the socket', closed);
  });
});
