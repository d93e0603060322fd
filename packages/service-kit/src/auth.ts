import { createHash, randomBytes } from 'node:crypto';
import { ErrorCodes, TandemError, type ErrorCode, type TokenRole } from '@tandem/contracts';
import { approverGroupsOfTask, findActiveApiTokenByHash, taskOwnership, type Db } from '@tandem/db';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Who called: the API token a request authenticated with. */
export interface Principal {
  tokenId: string;
  name: string;
  role: TokenRole;
  /** Agents a submitter token may submit for (`*`: any). */
  agents: string[];
  /** Approver groups of the token (empty: it sees only requests without a group). */
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
export function databaseAuth(db: Pick<Db, 'kysely'>): AuthOptions {
  return {
    findPrincipal: async (tokenHash) => {
      const row = await findActiveApiTokenByHash(db, tokenHash);
      if (!row) return null;
      return { tokenId: row.id, name: row.name, role: row.role, agents: row.agentIds, groups: row.groups };
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

/**
 * How a principal is named where a row records who submitted or changed something: `token:<ApiToken.id>`,
 * stable and unique (token names are neither), and never taken from a request body.
 */
export function principalRef(principal: Principal): string {
  return `token:${principal.tokenId}`;
}

/** What decides who may act on a task: its agent, its submitting token and its approval requests' groups. */
export interface TaskAccess {
  agentId: string | null;
  /** `token:<ApiToken.id>` of the submitting token ({@link principalRef}); null for a task from NATS. */
  submittedBy: string | null;
  /** The approver group of each approval request made for the task (null: a request without a group). */
  approverGroups: readonly (string | null)[];
}

/**
 * Whether a principal sees (and may decide) approval requests of `group`: an approver token with groups
 * only those groups' requests, an approver token without groups only requests without a group; admin all.
 */
export function maySeeApproverGroup(
  principal: { role: TokenRole; groups: readonly string[] },
  group: string | null,
): boolean {
  if (principal.role === 'admin') return true;
  if (principal.role !== 'approver') return false;
  if (principal.groups.length === 0) return group === null;
  return group !== null && principal.groups.includes(group);
}

/**
 * Whether a principal may read, edit, cancel or revert a task: admins always; the submitting token; a
 * submitter token that may act as the task's agent (listed, or `*`) — a task without an agent belongs
 * only to its submitting token and to `*` tokens —; an approver through an approval request of the task
 * that it sees ({@link maySeeApproverGroup}).
 */
export function mayActOnTask(principal: Principal, task: TaskAccess): boolean {
  if (principal.role === 'admin') return true;
  if (task.submittedBy !== null && task.submittedBy === principalRef(principal)) return true;
  if (principal.role === 'submitter') {
    return task.agentId === null ? principal.agents.includes('*') : mayActAsAgent(principal, task.agentId);
  }
  return (
    principal.role === 'approver' &&
    task.approverGroups.some((group) => maySeeApproverGroup(principal, group))
  );
}

/**
 * {@link mayActOnTask} against the stored task: false when the task does not exist or the principal may
 * not reach it. The approval requests' groups are read only for an approver that needs them.
 */
export async function reachesTask(
  db: Pick<Db, 'kysely'>,
  principal: Principal,
  taskId: string,
): Promise<boolean> {
  const task = await taskOwnership(db, taskId);
  if (!task) return false;
  if (mayActOnTask(principal, { ...task, approverGroups: [] })) return true;
  if (principal.role !== 'approver') return false;
  return mayActOnTask(principal, { ...task, approverGroups: await approverGroupsOfTask(db, taskId) });
}

/**
 * {@link reachesTask}, or TASK.NOT_FOUND (404) both when the task does not exist and when the principal
 * may not reach it, with the same message, so the answer reveals nothing about other tenants' tasks.
 */
export async function requireTaskAccess(
  db: Pick<Db, 'kysely'>,
  principal: Principal,
  taskId: string,
): Promise<void> {
  if (!(await reachesTask(db, principal, taskId)))
    throw new TandemError(ErrorCodes.TASK_NOT_FOUND, `task ${taskId} not found`);
}

// `Bearer <token>`: the scheme is case-insensitive (RFC 7235); a token is one run of visible characters.
const BEARER = /^bearer +(\S+) *$/i;

function refuse(reply: FastifyReply, status: 401 | 403, code: ErrorCode, message: string): FastifyReply {
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
