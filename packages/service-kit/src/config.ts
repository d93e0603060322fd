import { readFileSync } from 'node:fs';
import { ModelsConfigError, selectorConfigFromEnv, type SelectorConfig } from '@tandem/models';
import { parseAllowHosts, parseCidr, type ToolCheckContext } from '@tandem/contracts';
import { DEFAULT_CONSUMER_SETTINGS, inboxPrefixFor } from '@tandem/bus';
import { z } from 'zod';

/** An unset variable, or one set to '' (compose's `${X:-}`), is absent. */
const optionalSetting = <TSchema extends z.ZodType>(schema: TSchema) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema.optional());

/** Settings every service shares; each service extends it with its own. */
export const BaseConfig = z.object({
  DATABASE_URL: z.string().min(1, 'DATABASE_URL is required (postgresql://user@host:port/db)'),
  /** NATS server URL, or a cluster's URLs comma-separated (`nats://n1:4222,nats://n2:4222`). */
  NATS_URL: z.string().min(1).default('nats://127.0.0.1:4222'),
  /**
   * The service's own NATS user (infra/nats/nats.conf); with it the service expects its streams and
   * consumers provisioned (`pnpm nats:provision`). Unset: no credentials, and the service ensures them
   * itself (a dev server without auth). nats.js ignores a user:password inside NATS_URL.
   */
  TANDEM_NATS_USER: optionalSetting(
    z.string().regex(/^[A-Za-z0-9_-]+$/, "a NATS user name: letters, digits, '_' or '-'"),
  ),
  /** The password of TANDEM_NATS_USER. Never logged. */
  TANDEM_NATS_PASSWORD: optionalSetting(z.string()),
  TANDEM_SUBJECT_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/)
    .default('tandem'),
  TANDEM_HTTP_HOST: z.string().default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Log prompts, tool arguments and code (off by default: they may hold user data). */
  TANDEM_LOG_CONTENT: z.stringbool().default(false),
  TANDEM_DB_POOL_MAX: z.coerce.number().int().min(1).max(100).default(5),
  /** Prepare hot-path statements once per connection; off where connections share a session (PGlite, PgBouncer transaction mode). */
  TANDEM_DB_PREPARED_STATEMENTS: z.stringbool().default(true),
  /**
   * The ack wait of every durable consumer (ms). Handlers are heartbeated every third of it while they
   * run, so it is how long the messages of a process that died wait before another replica gets them,
   * not a limit on work. The provisioner reads the same variable (`pnpm nats:provision`).
   */
  TANDEM_ACK_WAIT_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .max(600_000)
    .default(DEFAULT_CONSUMER_SETTINGS.ackWaitMs),
  /** Deliveries of a message before it is dead-lettered as `BUS.MAX_DELIVERIES`, for every consumer. */
  TANDEM_MAX_DELIVER: z.coerce.number().int().min(2).max(100).default(DEFAULT_CONSUMER_SETTINGS.maxDeliver),
  /**
   * Replicas of every JetStream stream (1, or 3/5 on a NATS cluster). A service raises a stream's
   * replicas to this count and never lowers one an operator raised; the provisioner does the same.
   */
  TANDEM_STREAM_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
});
/** Settings every service shares. */
export type BaseConfig = z.infer<typeof BaseConfig>;

function commaList(value: string): string[] {
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
}

/**
 * Tool policy shared by the planner (which validates plans) and the executor (which runs them): both must
 * apply the same allow-list, so both read the same variables.
 */
export const ToolPolicyConfig = z.object({
  /**
   * Hosts `http_request` may call, comma-separated: `api.example.com`, `*.example.com` (subdomains, not the
   * apex), or an IP literal listed exactly; no ports (any port of an allowed host is allowed). Empty: none.
   */
  TANDEM_HTTP_ALLOW_HOSTS: z
    .string()
    .default('')
    .transform((value, context) => {
      const parsed = parseAllowHosts(commaList(value));
      if (parsed.ok) return parsed.hosts;
      context.addIssue({
        code: 'custom',
        message: `not a host name, *.-wildcard or IP literal without a port: ${parsed.invalid.join(', ')}`,
      });
      return z.NEVER;
    }),
  /** Allow plain `http://` URLs (https only by default). */
  TANDEM_HTTP_ALLOW_HTTP: z.stringbool().default(false),
  /** Private ranges `http_request` may reach (an operator opt-in, e.g. `10.1.2.0/24`), comma-separated. */
  TANDEM_HTTP_ALLOW_PRIVATE_CIDRS: z
    .string()
    .default('')
    .transform((value, context) => {
      const cidrs = commaList(value);
      const invalid = cidrs.filter((cidr) => parseCidr(cidr) === null);
      if (invalid.length === 0) return cidrs;
      context.addIssue({ code: 'custom', message: `not a CIDR range: ${invalid.join(', ')}` });
      return z.NEVER;
    }),
  /** Largest `run_code` program accepted, in characters (model-written programs included). */
  TANDEM_RUN_CODE_MAX_CHARS: z.coerce.number().int().min(100).max(1_000_000).default(100_000),
});
/** Tool policy shared by the planner and the executor. */
export type ToolPolicyConfig = z.infer<typeof ToolPolicyConfig>;

/** The semantic-check context of the tool registry from the shared tool policy. */
export function toolCheckContextFrom(config: ToolPolicyConfig): ToolCheckContext {
  return {
    http: {
      allowHosts: config.TANDEM_HTTP_ALLOW_HOSTS,
      allowHttp: config.TANDEM_HTTP_ALLOW_HTTP,
      allowPrivateCidrs: config.TANDEM_HTTP_ALLOW_PRIVATE_CIDRS,
    },
    runCode: { languages: ['javascript', 'python'], maxCodeChars: config.TANDEM_RUN_CODE_MAX_CHARS },
  };
}

/** The server URLs of `NATS_URL`: one, or a cluster's comma-separated. */
export function natsServers(natsUrl: string): string[] {
  return commaList(natsUrl);
}

/** The NATS connection options (credentials, inbox prefix) of a service config, and whether it is provisioned. */
export interface NatsConnectionSettings {
  /** Passed to `connectBus` as `connection`; empty without credentials. */
  connection: { user?: string; pass?: string; inboxPrefix?: string };
  /** True with credentials: the service's user may not create streams or consumers. */
  provisioned: boolean;
}

/** The NATS connection settings of a parsed base config (see TANDEM_NATS_USER). */
export function natsConnectionSettings(
  config: Pick<BaseConfig, 'TANDEM_NATS_USER' | 'TANDEM_NATS_PASSWORD'>,
): NatsConnectionSettings {
  const user = config.TANDEM_NATS_USER;
  if (user === undefined) return { connection: {}, provisioned: false };
  return {
    // Replies to this user go to its own inbox subjects, which no other user may subscribe to.
    connection: { user, pass: config.TANDEM_NATS_PASSWORD ?? '', inboxPrefix: inboxPrefixFor(user) },
    provisioned: true,
  };
}

function natsCredentialProblems(env: Record<string, string | undefined>): string[] {
  const user = (env['TANDEM_NATS_USER'] ?? '') !== '';
  const password = (env['TANDEM_NATS_PASSWORD'] ?? '') !== '';
  if (user && !password) return ['TANDEM_NATS_PASSWORD: required when TANDEM_NATS_USER is set'];
  if (password && !user) return ['TANDEM_NATS_USER: required when TANDEM_NATS_PASSWORD is set'];
  return [];
}

/** Thrown by {@link parseConfig}: every problem at once, printable. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Parses an environment-like record with a service's schema, collecting every problem. */
export function parseConfig<TSchema extends z.ZodType>(
  schema: TSchema,
  env: Record<string, string | undefined>,
): z.infer<TSchema> {
  const result = schema.safeParse(env);
  // Cross-setting checks of the base config: a refinement would stop services extending BaseConfig.
  const problems = natsCredentialProblems(env);
  if (result.success && problems.length === 0) return result.data;
  throw new ConfigError([
    ...(result.success
      ? []
      : result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)),
    ...problems,
  ]);
}

/** For `main.ts`: parse the config or print every problem and exit non-zero. */
export function loadConfigOrExit<TSchema extends z.ZodType>(
  schema: TSchema,
  env: Record<string, string | undefined>,
  service: string,
): z.infer<TSchema> {
  try {
    return parseConfig(schema, env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${service}: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

/**
 * For `main.ts` of a service that calls models: the selector's candidates from `TANDEM_MODELS_FILE` or the
 * model variables, or print every problem and exit 2.
 */
export function loadSelectorConfigOrExit(
  env: Record<string, string | undefined>,
  service: string,
): SelectorConfig {
  try {
    return selectorConfigFromEnv(env, (path) => readFileSync(path, 'utf8'));
  } catch (error) {
    if (!(error instanceof ModelsConfigError)) throw error;
    process.stderr.write(`${service}: ${error.message}\n`);
    process.exit(2);
  }
}
