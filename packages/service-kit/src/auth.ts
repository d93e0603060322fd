import { createHash, randomBytes } from 'node:crypto';
import { ErrorCodes, TandemError, TokenRole } from '@tandem/contracts';
import type { Db } from '@tandem/db';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Who called: the API token a request authenticated with. */
export interface Principal {
  tokenId: string;
  name: string;
  role: TokenRole;
  /** Agents a submitter token may submit for (`*`: any). */
  agents: string[];
  /** Approver groups of the token (empty: any). */
  groups: string[];
}

/** Finds the principal of a non-revoked token by the token's hash, or null. */
export type FindPrincipal = (tokenHash: string) => Promise<Principal | null>;

/** How `createHttpServer` authenticates requests. */
export interface AuthOptions {
  findPrincipal: FindPrincipal;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller; null on public routes and where the server has no auth. */
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** No token needed (probes, signed webhooks): the route authenticates its caller itself, if at all. */
    public?: boolean;
    /** Roles that may call the route (`admin` always may); absent: any valid token. */
    roles?: readonly TokenRole[];
  }
}

/** A new API token: `tdm_` + 32 random bytes, base64url. Shown once; only its hash is stored. */
export function generateApiToken(): string {
  return `tdm_${randomBytes(32).toString('base64url')}`;
}

/**
 * The stored form of a token: sha256, hex. Tokens are 32 random bytes, so a fast unsalted hash is
 * enough (nothing to brute-force) and lets one indexed lookup find the token.
 */
export function hashApiToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** The lookup the runtime uses: one query on the unique `tokenHash` index, no cache (a revoke is immediate). */
export function databaseAuth(db: Db): AuthOptions {
  return {
    findPrincipal: async (tokenHash) => {
      const row = await db.prisma.apiToken.findUnique({
        where: { tokenHash, revokedAt: null },
        select: { id: true, name: true, role: true, agentIds: true, groups: true },
      });
      if (!row) return null;
      const role = TokenRole.safeParse(row.role);
      // A row with a role this version does not know grants nothing.
      if (!role.success) return null;
      return { tokenId: row.id, name: row.name, role: role.data, agents: row.agentIds, groups: row.groups };
    },
  };
}

/** The principal of an authenticated request; throws AUTH.UNAUTHENTICATED (401) where there is none. */
export function requirePrincipal(request: FastifyRequest): Principal {
  if (request.principal === null)
    throw new TandemError(ErrorCodes.AUTH_UNAUTHENTICATED, 'this route needs a bearer token');
  return request.principal;
}

/** Whether a principal's role is one of `roles` (`admin` always is). */
export function hasRole(principal: Principal, roles: readonly TokenRole[]): boolean {
  return principal.role === 'admin' || roles.includes(principal.role);
}

/** Whether a principal may submit tasks as `agentId` (admin: any; submitter: listed, or `*`). */
export function mayActAsAgent(principal: Principal, agentId: string): boolean {
  return principal.role === 'admin' || principal.agents.includes('*') || principal.agents.includes(agentId);
}

// `Bearer <token>`: the scheme is case-insensitive (RFC 7235); a token is one run of visible characters.
const BEARER = /^bearer +(\S+) *$/i;

function refuse(reply: FastifyReply, status: 401 | 403, code: string, message: string): FastifyReply {
  if (status === 401) reply.header('www-authenticate', 'Bearer');
  return reply.code(status).send({ error: new TandemError(code, message).toShape() });
}

/**
 * The `onRequest` hook of `createHttpServer({ auth })`. It runs before routing's body parsing and
 * validation, for every request including unknown routes (so an unauthenticated caller learns nothing
 * about which routes exist: 401, not 404). Routes with `config: { public: true }` are skipped.
 */
export function authHook(options: AuthOptions) {
  // Returning the reply after `send` is how an async hook answers early (the route does not run).
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const config = request.routeOptions.config;
    if (config.public === true) return undefined;
    const header = request.headers.authorization;
    if (header === undefined || header === '') {
      return refuse(
        reply,
        401,
        ErrorCodes.AUTH_UNAUTHENTICATED,
        'missing bearer token: send "Authorization: Bearer <token>"',
      );
    }
    const token = BEARER.exec(header)?.[1];
    if (token === undefined) {
      return refuse(
        reply,
        401,
        ErrorCodes.AUTH_UNAUTHENTICATED,
        'the Authorization header must be "Bearer <token>"',
      );
    }
    // The hash lookup is the comparison: no secret is compared in JavaScript.
    const principal = await options.findPrincipal(hashApiToken(token));
    if (principal === null) {
      return refuse(reply, 401, ErrorCodes.AUTH_UNAUTHENTICATED, 'the token is unknown or revoked');
    }
    request.principal = principal;
    if (config.roles !== undefined && !hasRole(principal, config.roles)) {
      return refuse(
        reply,
        403,
        ErrorCodes.AUTH_FORBIDDEN,
        `a ${principal.role} token may not ${request.method} ${request.routeOptions.url ?? 'this route'}: it needs ${config.roles.join(' or ')}`,
      );
    }
    return undefined;
  };
}
