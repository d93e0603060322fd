import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { ErrorCodes, TandemError } from '@tandem/contracts';
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
 * Fastify with zod validation on every route, the shared error body `{ error: { code, message, retryable, issues? } }`,
 * and `/healthz`, `/readyz`, `/metrics`. With `auth`, every route but those with `config: { public: true }`
 * (the probes are) needs a bearer token, and `config: { roles }` limits a route to roles.
 */
export function createHttpServer(options: {
  log: Log;
  registry: Registry;
  readiness: ReadinessCheck[];
  bodyLimit?: number;
  auth?: AuthOptions;
}): HttpServer {
  // Fastify logs every request at info; its own logger stays at warn so a service's log is about its work.
  const app = Fastify({
    loggerInstance: options.log.child({ component: 'http' }, { level: 'warn' }),
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorateRequest('principal', null);
  // Added before any route, so that it covers every route and the not-found handler.
  if (options.auth) app.addHook('onRequest', authHook(options.auth));

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
      return reply
        .code(error.statusCode)
        .send({ error: { code: ErrorCodes.HTTP_BAD_REQUEST, message: error.message, retryable: false } });
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
