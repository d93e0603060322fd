import { createServer, type Server, type Socket } from 'node:net';
import type { PGlite } from '@electric-sql/pglite';

const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const PROTOCOL_3 = 196608;

/**
 * Serves one PGlite over the Postgres wire protocol to many connections at once, safely.
 *
 * PGlite is a single session. pglite-socket's server switches between connections at message
 * granularity, which interleaves one connection's Parse/Bind/Execute with another's (seen here:
 * "portal does not exist", parameters bound to the wrong statement). This server switches only at
 * protocol boundaries: a connection holds PGlite for a whole unit (everything up to Sync, a simple
 * Query, or a startup message), and keeps holding it while the session is inside a transaction, so
 * one connection's transaction never sees another's statements. A connection that drops inside a
 * transaction is rolled back.
 */
export class PGliteWireServer {
  private readonly db: PGlite;
  private server: Server | null = null;
  private owner: Connection | null = null;
  private readonly waiting: Connection[] = [];
  private readonly connections = new Set<Connection>();

  constructor(db: PGlite) {
    this.db = db;
  }

  /** Listens on host:port; resolves with the bound port. */
  async listen(port: number, host = '127.0.0.1'): Promise<number> {
    const server = createServer((socket) => {
      const connection = new Connection(socket, this);
      this.connections.add(connection);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const address = server.address();
    return typeof address === 'object' && address !== null ? address.port : port;
  }

  async close(): Promise<void> {
    for (const connection of this.connections) connection.socket.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Called by a connection with a complete unit; runs units one at a time in arrival order. */
  request(connection: Connection): void {
    if (!this.waiting.includes(connection)) this.waiting.push(connection);
    this.pump();
  }

  private pumping = false;

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    void (async () => {
      try {
        while (true) {
          let next: Connection | undefined;
          if (this.owner) {
            // Inside a transaction only its owner may go on.
            const index = this.waiting.indexOf(this.owner);
            if (index === -1) break;
            next = this.waiting.splice(index, 1)[0];
          } else {
            next = this.waiting.shift();
          }
          if (!next) break;
          const unit = next.takeUnit();
          if (unit) {
            try {
              await this.db.runExclusive(() =>
                this.db.execProtocolRawStream(unit, { onRawData: (data) => next.write(data) }),
              );
            } catch {
              // A unit PGlite cannot process (a malformed startup packet, say) ends that connection only.
              next.socket.destroy();
              continue;
            }
          }
          this.owner = this.db.isInTransaction() ? next : null;
          if (next.hasUnit()) this.waiting.push(next);
        }
      } finally {
        this.pumping = false;
      }
    })();
  }

  /** A connection went away: drop its queued work and roll back a transaction it left open. */
  async release(connection: Connection): Promise<void> {
    this.connections.delete(connection);
    const index = this.waiting.indexOf(connection);
    if (index !== -1) this.waiting.splice(index, 1);
    if (this.owner === connection) {
      // exec takes PGlite's lock itself (wrapping it in runExclusive would wait forever); no other
      // connection runs meanwhile because this one still owns the session.
      if (this.db.isInTransaction()) await this.db.exec('ROLLBACK');
      this.owner = null;
      this.pump();
    }
  }
}

class Connection {
  readonly socket: Socket;
  private readonly server: PGliteWireServer;
  private buffer = Buffer.alloc(0);
  private readonly units: Buffer[] = [];
  private pending: Buffer[] = [];
  private started = false;

  constructor(socket: Socket, server: PGliteWireServer) {
    this.socket = socket;
    this.server = server;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      void this.server.release(this);
    });
  }

  write(data: Uint8Array): void {
    if (data.length > 0 && this.socket.writable) this.socket.write(data);
  }

  hasUnit(): boolean {
    return this.units.length > 0;
  }

  takeUnit(): Uint8Array | undefined {
    return this.units.shift();
  }

  private onData(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    let produced = false;
    while (true) {
      if (!this.started) {
        if (this.buffer.length < 8) break;
        const length = this.buffer.readInt32BE(0);
        if (this.buffer.length < length) break;
        const code = this.buffer.readInt32BE(4);
        const message = this.buffer.subarray(0, length);
        this.buffer = this.buffer.subarray(length);
        if (code === SSL_REQUEST || code === GSS_REQUEST) {
          this.socket.write('N');
          continue;
        }
        if (code === CANCEL_REQUEST) {
          this.socket.destroy();
          return;
        }
        if (code !== PROTOCOL_3) {
          this.socket.destroy();
          return;
        }
        if (!isWellFormedStartup(message)) {
          // PGlite is left unusable by a malformed startup packet: refuse it before it gets there.
          this.socket.destroy();
          return;
        }
        this.started = true;
        this.units.push(Buffer.from(message));
        produced = true;
        continue;
      }
      if (this.buffer.length < 5) break;
      const type = String.fromCharCode(this.buffer[0] ?? 0);
      const length = 1 + this.buffer.readInt32BE(1);
      if (this.buffer.length < length) break;
      const message = Buffer.from(this.buffer.subarray(0, length));
      this.buffer = this.buffer.subarray(length);
      if (type === 'X') {
        this.socket.end();
        return;
      }
      this.pending.push(message);
      // A unit ends where the server answers ReadyForQuery: after Sync or a simple Query.
      // Flush ('H') asks for output without ending the unit.
      if (type === 'S' || type === 'Q') {
        this.units.push(Buffer.concat(this.pending));
        this.pending = [];
        produced = true;
      }
    }
    if (produced) this.server.request(this);
  }
}

/** A startup body is NUL-terminated name/value pairs, ending in an extra NUL, naming at least `user`. */
function isWellFormedStartup(message: Buffer): boolean {
  const body = message.subarray(8);
  if (body.length < 2 || body[body.length - 1] !== 0 || body[body.length - 2] !== 0) return false;
  const parts = body
    .subarray(0, body.length - 1)
    .toString('utf8')
    .split('\u0000');
  parts.pop();
  if (parts.length === 0 || parts.length % 2 !== 0) return false;
  const names = parts.filter((_, index) => index % 2 === 0);
  return names.every((name) => name.length > 0) && names.includes('user');
}
