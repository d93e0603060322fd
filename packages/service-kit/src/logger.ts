import { pino, type Logger } from 'pino';

/** The logger type services pass around. */
export type Log = Logger;

/** Paths that may hold user content or secrets; redacted unless content logging is enabled. */
// `code` is not here: it is the error code of every TandemError and pg error; program text is never logged.
const CONTENT_PATHS = [
  'prompt',
  'messages',
  'program',
  'arguments',
  'input',
  'answer',
  '*.prompt',
  '*.messages',
  '*.program',
  '*.arguments',
  '*.input',
];
const SECRET_PATHS = [
  'apiKey',
  '*.apiKey',
  'authorization',
  '*.authorization',
  'headers.authorization',
  // A logged request (`req`, `request`, ...): its bearer token is in here.
  '*.headers.authorization',
  'password',
  '*.password',
  'token',
  '*.token',
  'secret',
  '*.secret',
];

/** One pino logger per process; secrets are always redacted, content unless `logContent`. */
export function createLogger(options: {
  service: string;
  level: string;
  logContent?: boolean;
  destination?: NodeJS.WritableStream;
}): Log {
  const paths = options.logContent ? SECRET_PATHS : [...SECRET_PATHS, ...CONTENT_PATHS];
  const config = {
    name: options.service,
    level: options.level,
    base: { service: options.service },
    redact: { paths, censor: '[redacted]' },
  };
  return options.destination ? pino(config, options.destination) : pino(config);
}
