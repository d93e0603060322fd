import {
  ErrorCodes,
  TandemError,
  TokenView,
  type CreateTokenBody,
  type CreatedToken,
  type TokenRole,
} from '@tandem/contracts';
import {
  countActiveAdminTokens,
  findApiToken,
  listApiTokens,
  lockAdminTokens,
  revokeApiToken,
  transaction,
  type Db,
  type StoredApiToken,
  type Tx,
} from '@tandem/db';
import {
  BOOTSTRAP_ADMIN_NAME,
  ensureBootstrapAdmin as ensureBootstrapAdminToken,
  generateApiToken,
  insertApiToken,
  type Log,
} from '@tandem/service-kit';
import { writeAudit } from './audit.js';

export { BOOTSTRAP_ADMIN_NAME } from '@tandem/service-kit';

function toView(row: StoredApiToken): TokenView {
  return TokenView.parse({
    id: row.id,
    name: row.name,
    role: row.role,
    agents: row.agentIds,
    groups: row.groups,
    createdAt: row.createdAt.toISOString(),
    createdBy: row.createdBy,
    revokedAt: row.revokedAt?.toISOString() ?? null,
  });
}

async function audit(
  tx: Tx,
  action: 'token.created' | 'token.revoked',
  row: { id: string; name: string; role: TokenRole },
  actor: string | null,
): Promise<void> {
  await writeAudit(tx, [
    {
      action,
      subject: { type: 'api-token', id: row.id },
      actor,
      reason: null,
      data: { name: row.name, role: row.role },
    },
  ]);
}

/**
 * Creates a token and returns it with its secret, shown this once (only the hash is stored). Agents
 * belong to submitter tokens and groups to approver tokens; anything else is HTTP.BAD_REQUEST.
 */
export async function createToken(
  db: Db,
  body: CreateTokenBody,
  options: { createdBy: string | null },
): Promise<CreatedToken> {
  const agents = [...new Set(body.agents ?? [])];
  const groups = [...new Set(body.groups ?? [])];
  if (agents.length > 0 && body.role !== 'submitter')
    throw new TandemError(
      ErrorCodes.HTTP_BAD_REQUEST,
      `agents are for submitter tokens, not ${body.role} tokens`,
    );
  if (groups.length > 0 && body.role !== 'approver')
    throw new TandemError(
      ErrorCodes.HTTP_BAD_REQUEST,
      `groups are for approver tokens, not ${body.role} tokens`,
    );
  const token = generateApiToken();
  const row = await transaction(db, async (tx) => {
    const id = await insertApiToken(tx, {
      token,
      name: body.name,
      role: body.role,
      agents,
      groups,
      createdBy: options.createdBy,
    });
    const created = await findApiToken(tx, id);
    if (created === null) throw new TandemError(ErrorCodes.INTERNAL, `token ${id} was not stored`);
    await audit(tx, 'token.created', created, options.createdBy);
    return created;
  });
  return { ...toView(row), token };
}

/** Every token, newest first; revoked ones too unless `activeOnly`. Never a hash. */
export async function listTokens(db: Db, options: { activeOnly?: boolean } = {}): Promise<TokenView[]> {
  const rows = await listApiTokens(db, options.activeOnly === true ? { activeOnly: true } : {});
  return rows.map(toView);
}

/**
 * Revokes a token: it stops working on the next request (auth reads the row every time). Revoking a
 * revoked token changes nothing and returns it; TOKEN.NOT_FOUND for an unknown id; HTTP.CONFLICT for
 * the last non-revoked admin token (create another admin token first).
 */
export async function revokeToken(
  db: Db,
  id: string,
  options: { revokedBy: string | null },
): Promise<TokenView> {
  return transaction(db, async (tx) => {
    await lockAdminTokens(tx);
    const row = await findApiToken(tx, id);
    if (!row) throw new TandemError(ErrorCodes.TOKEN_NOT_FOUND, `token ${id} not found`);
    if (row.revokedAt !== null) return toView(row);
    if (row.role === 'admin') {
      const otherAdmins = await countActiveAdminTokens(tx, { except: id });
      if (otherAdmins === 0) {
        throw new TandemError(
          ErrorCodes.HTTP_CONFLICT,
          `token ${id} is the last admin token: create another admin token before revoking it`,
        );
      }
    }
    const revoked = await revokeApiToken(tx, id);
    if (revoked === null) throw new TandemError(ErrorCodes.TOKEN_NOT_FOUND, `token ${id} not found`);
    await audit(tx, 'token.revoked', revoked, options.revokedBy);
    return toView(revoked);
  });
}

/**
 * Makes sure an installation has an admin token (the rules: `ensureBootstrapAdmin` of
 * `@tandem/service-kit`, shared with `pnpm start`), with a `token.created` audit row for a new one.
 * A generated token is returned for the caller to print once — it is never logged.
 */
export async function ensureBootstrapAdmin(
  db: Db,
  options: { token?: string | undefined; log: Pick<Log, 'info'> },
): Promise<{ created: boolean; token?: string }> {
  const { token, log } = options;
  const state = await transaction(db, (tx) =>
    ensureBootstrapAdminToken(tx, token, async ({ tokenId, createdBy }) => {
      await writeAudit(tx, [
        {
          action: 'token.created',
          subject: { type: 'api-token', id: tokenId },
          actor: createdBy,
          reason: null,
          data: { name: BOOTSTRAP_ADMIN_NAME, role: 'admin' },
        },
      ]);
      log.info(
        { tokenId },
        token === undefined
          ? 'no admin token existed: created one (printed once, never logged)'
          : 'admin token created from TANDEM_ADMIN_TOKEN',
      );
    }),
  );
  if (state.kind === 'generated') return { created: true, token: state.token };
  return { created: state.kind === 'from-env' && state.created };
}

/** The lines to print, once, for a generated admin token (stdout, never the log). */
export function bootstrapAdminBanner(token: string): string {
  return [
    '',
    '##############################################################################',
    '#  ADMIN TOKEN (shown this once; store it now, it cannot be shown again):',
    `#    ${token}`,
    '#  Create more tokens with it: POST /v1/tokens on the approval API, or',
    '#  `pnpm tandem token create --role submitter --name <name>` with DATABASE_URL.',
    '##############################################################################',
    '',
  ].join('\n');
}
