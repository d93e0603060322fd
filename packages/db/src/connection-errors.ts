import { ErrorCodes, TandemError } from '@tandem/contracts';

// SQLSTATE classes and codes of a connection that is gone or refused (not of a statement that failed).
const CONNECTION_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);
const CONNECTION_ERRNOS = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTCONN',
  'EHOSTUNREACH',
]);
const CONNECTION_MESSAGES = [
  'Connection terminated',
  'Client has encountered a connection error',
  'Client was closed and is not queryable',
  'timeout exceeded when trying to connect',
];

/**
 * Whether an error says the database connection itself failed (server shut down or restarting, backend
 * terminated, socket reset or refused) rather than a statement: worth retrying on a new connection.
 */
export function isConnectionError(error: unknown): boolean {
  if (error instanceof TandemError) return error.code === ErrorCodes.DB_CONNECTION_LOST;
  if (typeof error !== 'object' || error === null) return false;
  const code = 'code' in error && typeof error.code === 'string' ? error.code : '';
  if (CONNECTION_SQLSTATES.has(code) || code.startsWith('08') || CONNECTION_ERRNOS.has(code)) return true;
  const message = 'message' in error && typeof error.message === 'string' ? error.message : '';
  return CONNECTION_MESSAGES.some((known) => message.includes(known));
}

/** The retryable `DB.CONNECTION_LOST` error for a connection failure (kept as its cause). */
export function connectionLost(cause: unknown, thrown: unknown = cause): TandemError {
  if (thrown instanceof TandemError && thrown.code === ErrorCodes.DB_CONNECTION_LOST) return thrown;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new TandemError(ErrorCodes.DB_CONNECTION_LOST, `the database connection was lost: ${reason}`, {
    retryable: true,
    cause,
  });
}
