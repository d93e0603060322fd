import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import {
  DEFAULT_HTTP_BODY_LIMITS,
  ErrorCodes,
  TandemError,
  scanJsonText,
  toSafeJson,
  type JsonTextLimits,
} from '@tandem/contracts';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { authHook, type AuthOptions } from './auth.js';
import type { Log } from './logger.js';

/** A readiness probe: `ok` false makes `/readyz` answer 503 with the detail. */
export type ReadinessCheck = () => Promise<{ name: string; ok: boolean; detail?: string }>;

/** The Fastify instance type services register routes on (zod type provider). */
export type HttpServer = FastifyInstance<Server, IncomingMessage, ServerResponse, Log, ZodTypeProvider>;

/** Status codes for error codes that are the caller's fault. */
const STATUS_BY_CODE: Record<string, number> = {
  [ErrorCodes.HTTP_BAD_REQUEST]: 400,
  [ErrorCodes.HTTP_BODY_TOO_DEEP]: 400,
  [ErrorCodes.HTTP_BODY_TOO_LARGE]: 413,
  [ErrorCodes.HTTP_NOT_FOUND]: 404,
  [ErrorCodes.TASK_NOT_FOUND]: 404,
  [ErrorCodes.APPROVAL_NOT_FOUND]: 404,
  [ErrorCodes.HTTP_CONFLICT]: 409,
  [ErrorCodes.APPROVAL_ALREADY_DECIDED]: 409,
  [ErrorCodes.TASK_CONFLICT]: 409,
  [ErrorCodes.TASK_NOT_EDITABLE]: 409,
  [ErrorCodes.AUTH_UNAUTHENTICATED]: 401,
  [ErrorCodes.WEBHOOK_SIGNATURE_INVALID]: 401,
  [ErrorCodes.AUTH_FORBIDDEN]: 403,
  [ErrorCodes.AUTH_AGENT_NOT_ALLOWED]: 403,
  [ErrorCodes.APPROVAL_NOT_YOUR_GROUP]: 403,
  [ErrorCodes.STEP_NOT_FOUND]: 404,
  [ErrorCodes.TOKEN_NOT_FOUND]: 404,
  [ErrorCodes.AGENT_NOT_FOUND]: 404,
  [ErrorCodes.STEP_NOT_REVERTIBLE]: 409,
  [ErrorCodes.APPROVAL_EXPIRED]: 409,
};

/**
 * Checks a raw request body against size and depth limits before anything parses it into objects: a
 * `HTTP.BODY_TOO_LARGE` (413) or `HTTP.BODY_TOO_DEEP` (400) error for the error handler, or null. For
 * routes that read the body as text themselves (the signed decision webhook).
 */
export function checkJsonBody(text: string, limits: JsonTextLimits): TandemError | null {
  const scan = scanJsonText(text, limits);
  if (scan.ok) return null;
  if (scan.problem === 'too_large')
    return new TandemError(ErrorCodes.HTTP_BODY_TOO_LARGE, `the body is larger than ${scan.limit} bytes`);
  return new TandemError(
    ErrorCodes.HTTP_BODY_TOO_DEEP,
    `the body nests more than ${scan.limit} levels deep (at offset ${scan.offset})`,
  );
}

/**
 * Fastify with zod validation on every route, the shared error body `{ error: { code, message, retryable, issues? } }`,
 * and `/healthz`, `/readyz`, `/metrics`. With `auth`, every route but those with `config: { public: true }`
 * (the probes are) needs a bearer token, and `config: { roles }` limits a route to roles.
 * Every JSON body is scanned before it is parsed: over `bodyLimit` bytes (default 1 MiB, or the route's
 * own `bodyLimit`) is 413 `HTTP.BODY_TOO_LARGE`, nested deeper than `maxBodyDepth` (default 32) is 400
 * `HTTP.BODY_TOO_DEEP`, so no validator ever recurses into a hostile body. Parsed bodies have NUL and
 * lone surrogates replaced by U+FFFD (Postgres cannot store them).
 */
export function createHttpServer(options: {
  log: Log;
  registry: Registry;
  readiness: ReadinessCheck[];
  bodyLimit?: number;
  maxBodyDepth?: number;
  auth?: AuthOptions;
}): HttpServer {
  const bodyLimit = options.bodyLimit ?? DEFAULT_HTTP_BODY_LIMITS.maxBytes;
  const maxBodyDepth = options.maxBodyDepth ?? DEFAULT_HTTP_BODY_LIMITS.maxDepth;
  // Fastify logs every request at info; its own logger stays at warn so a service's log is about its work.
  const app = Fastify({
    loggerInstance: options.log.child({ component: 'http' }, { level: 'warn' }),
    bodyLimit,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorateRequest('principal', null);
  // Added before any route, so that it covers every route and the not-found handler.
  if (options.auth) app.addHook('onRequest', authHook(options.auth));

  // Fastify's own JSON parser (empty-body and __proto__/constructor checks kept), behind the scan.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    const refused = checkJsonBody(text, {
      maxBytes: request.routeOptions.bodyLimit,
      maxDepth: maxBodyDepth,
    });
    if (refused !== null) {
      done(refused, undefined);
      return;
    }
    // Every body is made safe for Postgres here, once for every route: NUL and lone surrogates (which
    // text and jsonb columns refuse) become U+FFFD, so no route can fail on them with a 500.
    void parseJson(request, text, (error, body) => {
      if (error) done(error, undefined);
      else done(null, toSafeJson(body));
    });
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(error)) {
      return reply.code(400).send({
        error: {
          code: ErrorCodes.HTTP_BAD_REQUEST,
          message: `invalid ${error.validationContext ?? 'request'}`,
          retryable: false,
          issues: error.validation.map((issue) => ({
            path: issue.instancePath,
            message: issue.message,
            keyword: issue.keyword,
          })),
        },
      });
    }
    if (error instanceof TandemError) {
      const status = STATUS_BY_CODE[error.code] ?? (error.retryable ? 503 : 422);
      return reply.code(status).send({ error: error.toShape() });
    }
    if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      // 413 is Fastify refusing a body over bodyLimit while reading it (FST_ERR_CTP_BODY_TOO_LARGE).
      const code = error.statusCode === 413 ? ErrorCodes.HTTP_BODY_TOO_LARGE : ErrorCodes.HTTP_BAD_REQUEST;
      return reply.code(error.statusCode).send({ error: { code, message: error.message, retryable: false } });
    }
    request.log.error({ err: error }, 'request failed');
    return reply
      .code(500)
      .send({ error: { code: ErrorCodes.INTERNAL, message: 'internal error', retryable: true } });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      error: {
        code: ErrorCodes.HTTP_NOT_FOUND,
        message: `no route ${request.method} ${request.url}`,
        retryable: false,
      },
    }),
  );

  // Probes and metrics stay open: orchestrators and Prometheus scrape them without a token.
  app.get('/healthz', { config: { public: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config: { public: true } }, async (_request, reply) => {
    const results = await Promise.all(
      options.readiness.map(async (check) => {
        try {
          return await check();
        } catch (error) {
          return { name: 'check', ok: false, detail: error instanceof Error ? error.message : String(error) };
        }
      }),
    );
    const ready = results.every((result) => result.ok);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not-ready', checks: results });
  });
  app.get('/metrics', { config: { public: true } }, async (_request, reply) => {
    const body = await options.registry.metrics();
    return reply.header('content-type', options.registry.contentType).send(body);
  });
  return app;
}
