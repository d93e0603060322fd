import { CreateTokenBody, CreatedToken, HttpErrorBody, TokenView } from '@tandem/contracts';
import type { Db } from '@tandem/db';
import { requirePrincipal, type HttpServer } from '@tandem/service-kit';
import { z } from 'zod';
import { createToken, listTokens, revokeToken } from '../tokens.js';

const IdParams = z.strictObject({ id: z.uuid() });
const ERRORS = { 400: HttpErrorBody, 401: HttpErrorBody, 403: HttpErrorBody };

/** `POST /v1/tokens`, `GET /v1/tokens`, `DELETE /v1/tokens/:id`: admin tokens only. */
export function registerTokenRoutes(app: HttpServer, deps: { db: Db }): void {
  app.post(
    '/v1/tokens',
    {
      config: { roles: ['admin'] },
      schema: { body: CreateTokenBody, response: { 201: CreatedToken, ...ERRORS } },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const created = await createToken(deps.db, request.body, { createdBy: `token:${principal.name}` });
      return reply.code(201).send(created);
    },
  );

  app.get(
    '/v1/tokens',
    {
      config: { roles: ['admin'] },
      schema: { response: { 200: z.object({ tokens: z.array(TokenView) }), ...ERRORS } },
    },
    async () => ({ tokens: await listTokens(deps.db) }),
  );

  app.delete(
    '/v1/tokens/:id',
    {
      config: { roles: ['admin'] },
      schema: {
        params: IdParams,
        response: { 200: TokenView, 404: HttpErrorBody, 409: HttpErrorBody, ...ERRORS },
      },
    },
    async (request) => {
      const principal = requirePrincipal(request);
      return revokeToken(deps.db, request.params.id, { revokedBy: `token:${principal.name}` });
    },
  );
}
