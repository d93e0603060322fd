import { z } from 'zod';

/** Names a plan may reference in `http_request` headers; values never leave the executor's memory. */
export interface SecretStore {
  /** The value of a secret, or undefined when there is none by that name. */
  resolve(name: string): string | undefined;
  /** Every value, so results can be scrubbed of a secret the remote side echoed back. */
  values(): string[];
  /** The names, for error messages and readiness (never the values). */
  names(): string[];
}

const SECRET_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;
const SecretsFile = z.record(z.string().regex(SECRET_NAME), z.string().min(1));
const ENV_PREFIX = 'TANDEM_SECRET_';

/** Thrown when the secrets file is unreadable or malformed (never with a value in the message). */
export class SecretsConfigError extends Error {
  override readonly name = 'SecretsConfigError';
}

/**
 * The executor's secret store: `TANDEM_SECRET_<NAME>` variables and, when `TANDEM_SECRETS_FILE` names
 * one, a JSON file `{ "NAME": "value" }` (a variable wins over the file).
 */
export function secretStoreFromEnv(
  env: Record<string, string | undefined>,
  readFile: (path: string) => string,
): SecretStore {
  const secrets = new Map<string, string>();
  const file = env['TANDEM_SECRETS_FILE']?.trim();
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFile(file));
    } catch (error) {
      throw new SecretsConfigError(
        `TANDEM_SECRETS_FILE ${file} is not a readable JSON file (${error instanceof Error ? error.name : 'error'})`,
      );
    }
    const result = SecretsFile.safeParse(parsed);
    if (!result.success) {
      throw new SecretsConfigError(
        `TANDEM_SECRETS_FILE ${file} must be a JSON object of NAME: "value" (names ${SECRET_NAME.source})`,
      );
    }
    for (const [name, value] of Object.entries(result.data)) secrets.set(name, value);
  }
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith(ENV_PREFIX) || value === undefined || value === '') continue;
    const name = key.slice(ENV_PREFIX.length);
    if (SECRET_NAME.test(name)) secrets.set(name, value);
  }
  return createSecretStore(secrets);
}

/** A store over a fixed map (tests, and the env/file loader above). */
export function createSecretStore(secrets: ReadonlyMap<string, string>): SecretStore {
  return {
    resolve: (name) => secrets.get(name),
    values: () => [...secrets.values()],
    names: () => [...secrets.keys()].sort(),
  };
}

/** Replaces every occurrence of a secret value in a text (values shorter than 4 characters are left). */
export function scrubSecrets(text: string, values: readonly string[]): string {
  let out = text;
  for (const value of values) {
    if (value.length < 4) continue;
    out = out.split(value).join('[secret]');
  }
  return out;
}
