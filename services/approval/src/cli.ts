/**
 * `pnpm tandem token create --role submitter|approver|admin --name <name> [--agent <id>]... [--group <g>]...`,
 * `pnpm tandem token list`, `pnpm tandem token revoke <id>`: API tokens, for the installation's admin,
 * straight against the database at DATABASE_URL. `create` prints the token once, on its last line.
 * Exit code: 0 done, 1 failed (unknown token, last admin, database), 2 usage or configuration error.
 */
import { CreateTokenBody, ErrorCodes, TandemError, type TokenView } from '@tandem/contracts';
import { createDb, type Db } from '@tandem/db';
import { z } from 'zod';
import { createToken, listTokens, revokeToken } from './tokens.js';

const USAGE = `usage:
  pnpm tandem token create --role submitter|approver|admin --name <name> [--agent <id>]... [--group <group>]...
  pnpm tandem token list
  pnpm tandem token revoke <token id>
DATABASE_URL must point at Tandem's database.`;

/** A problem with how the command was called: printed with the usage, exit code 2. */
class UsageError extends Error {}

type Command =
  | { kind: 'help' }
  | { kind: 'create'; body: CreateTokenBody }
  | { kind: 'list' }
  | { kind: 'revoke'; id: string };

const REPEATABLE = new Set(['agent', 'group']);
const SINGLE = new Set(['role', 'name']);

/** The flag a body field came from (`agents.0` -> `--agent`). */
const FLAG_OF: Record<string, string> = { name: 'name', role: 'role', agents: 'agent', groups: 'group' };

function issuesOf(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const field = issue.path[0];
      return `${typeof field === 'string' ? `--${FLAG_OF[field] ?? field}` : 'flags'}: ${issue.message}`;
    })
    .join('; ');
}

function parseCreate(words: readonly string[]): CreateTokenBody {
  const single: Record<string, string> = {};
  const repeated: Record<string, string[]> = { agent: [], group: [] };
  for (let index = 0; index < words.length; index += 1) {
    const word = words[index] ?? '';
    if (!word.startsWith('--')) throw new UsageError(`unexpected argument "${word}"`);
    const [name = '', inline] = word.slice(2).split(/=(.*)/s, 2);
    if (!SINGLE.has(name) && !REPEATABLE.has(name)) throw new UsageError(`unknown flag --${name}`);
    const value = inline ?? words[(index += 1)];
    if (value === undefined || (inline === undefined && value.startsWith('--')))
      throw new UsageError(`--${name} needs a value`);
    const list = repeated[name];
    if (list !== undefined) list.push(value);
    else if (name in single) throw new UsageError(`--${name} given twice`);
    else single[name] = value;
  }
  const parsed = CreateTokenBody.safeParse({
    name: single['name'],
    role: single['role'],
    ...(repeated['agent']?.length ? { agents: repeated['agent'] } : {}),
    ...(repeated['group']?.length ? { groups: repeated['group'] } : {}),
  });
  if (!parsed.success) throw new UsageError(issuesOf(parsed.error));
  return parsed.data;
}

/** Parses argv strictly: unknown commands, flags and extra words are usage errors. */
function parseCommand(argv: readonly string[]): Command {
  const [area, action, ...rest] = argv;
  if (area === undefined || area === '--help' || area === 'help') return { kind: 'help' };
  if (area !== 'token') throw new UsageError(`unknown command "${area}"`);
  if (action === undefined) throw new UsageError('token: say create, list or revoke');
  switch (action) {
    case 'create':
      return { kind: 'create', body: parseCreate(rest) };
    case 'list':
      if (rest.length > 0) throw new UsageError(`token list takes no arguments (got "${rest.join(' ')}")`);
      return { kind: 'list' };
    case 'revoke': {
      if (rest.length !== 1) throw new UsageError('token revoke takes exactly one token id');
      const id = z.uuid().safeParse(rest[0]);
      if (!id.success) throw new UsageError(`"${rest[0] ?? ''}" is not a token id (a UUID)`);
      return { kind: 'revoke', id: id.data };
    }
    default:
      throw new UsageError(`unknown token command "${action}"`);
  }
}

function describe(view: TokenView): string {
  const scope =
    view.agents.length > 0
      ? `agents ${view.agents.join(',')}`
      : view.groups.length > 0
        ? `groups ${view.groups.join(',')}`
        : '-';
  return [
    view.id,
    view.role.padEnd(9),
    view.revokedAt === null ? 'active ' : 'revoked',
    view.createdAt,
    JSON.stringify(view.name),
    scope,
  ].join('  ');
}

async function run(command: Exclude<Command, { kind: 'help' }>, db: Db): Promise<void> {
  const say = (line: string) => process.stdout.write(`${line}\n`);
  switch (command.kind) {
    case 'create': {
      const created = await createToken(db, command.body, { createdBy: 'cli' });
      say(`created ${describe(created)}`);
      say('the token is shown this once; store it now:');
      say(created.token);
      return;
    }
    case 'list': {
      const tokens = await listTokens(db);
      if (tokens.length === 0) say('no tokens');
      for (const view of tokens) say(describe(view));
      return;
    }
    case 'revoke': {
      const revoked = await revokeToken(db, command.id, { revokedBy: 'cli' });
      say(`revoked ${describe(revoked)}`);
      return;
    }
  }
}

async function main(): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`tandem: ${error.message}\n${USAGE}\n`);
    return 2;
  }
  if (command.kind === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // A composition root, like a service's main.ts: the one place this command reads the environment.
  const url = process.env['DATABASE_URL'];
  if (url === undefined || url === '') {
    process.stderr.write(
      "tandem: DATABASE_URL is not set. Set it to Tandem's database to manage tokens here; with `pnpm start`'s " +
        'embedded database, use the approval API with the admin token instead:\n' +
        "  curl -X POST localhost:7102/v1/tokens -H 'authorization: Bearer <admin token>' " +
        `-H 'content-type: application/json' -d '{"name":"ci","role":"submitter"}'\n`,
    );
    return 2;
  }
  const db = createDb({ url, poolMax: 1 });
  try {
    await run(command, db);
    return 0;
  } catch (error) {
    if (error instanceof TandemError) {
      // A refused body (agents on an approver token...) is a usage error, like a bad flag.
      const usage = error.code === ErrorCodes.HTTP_BAD_REQUEST;
      process.stderr.write(`tandem: ${error.message}\n${usage ? `${USAGE}\n` : ''}`);
      return usage ? 2 : 1;
    }
    process.stderr.write(`tandem: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    await db.close();
  }
}

process.exitCode = await main();
