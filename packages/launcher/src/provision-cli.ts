import { ConfigError } from '@tandem/service-kit';
import { provisionAs } from './nats-auth.js';
import { consumerSettingsOf, parseProvisionConfig } from './provision-config.js';

// `pnpm nats:provision`: creates or updates every stream and every declared durable consumer
// (packages/bus/src/topology.ts) before services that log in with their own NATS users start; they have
// no right to create them. Idempotent. A composition root, so it reads the environment.
try {
  const config = parseProvisionConfig(process.env);
  const user = config.TANDEM_NATS_PROVISIONER_USER;
  const password = config.TANDEM_NATS_PROVISIONER_PASSWORD;
  if ((user === undefined) !== (password === undefined)) {
    throw new ConfigError([
      'TANDEM_NATS_PROVISIONER_USER and TANDEM_NATS_PROVISIONER_PASSWORD: set both or neither',
    ]);
  }
  const result = await provisionAs({
    servers: config.NATS_URL,
    credentials: user !== undefined && password !== undefined ? { user, password } : null,
    prefix: config.TANDEM_SUBJECT_PREFIX,
    settings: consumerSettingsOf(config),
  });
  for (const [kind, changes] of Object.entries(result)) {
    for (const [name, change] of Object.entries(changes))
      process.stdout.write(`${kind.slice(0, -1)} ${name}: ${change}\n`);
  }
} catch (error) {
  process.stderr.write(`nats:provision: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(error instanceof ConfigError ? 2 : 1);
}
