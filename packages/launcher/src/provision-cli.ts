import { ConfigError } from '@tandem/service-kit';
import { provisionAs } from './nats-auth.js';
import { consumerSettingsOf, parseProvisionConfig, provisionerCredentialsOf } from './provision-config.js';

// `pnpm nats:provision`: creates or updates every stream and every declared durable consumer
// (packages/bus/src/topology.ts) before services that log in with their own NATS users start; they have
// no right to create them. Idempotent. A composition root, so it reads the environment.
try {
  const config = parseProvisionConfig(process.env);
  const result = await provisionAs({
    servers: config.NATS_URL,
    credentials: provisionerCredentialsOf(config),
    prefix: config.TANDEM_SUBJECT_PREFIX,
    settings: consumerSettingsOf(config),
    streamReplicas: config.TANDEM_STREAM_REPLICAS,
  });
  for (const [kind, changes] of Object.entries(result)) {
    for (const [name, change] of Object.entries(changes))
      process.stdout.write(`${kind.slice(0, -1)} ${name}: ${change}\n`);
  }
} catch (error) {
  process.stderr.write(`nats:provision: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(error instanceof ConfigError ? 2 : 1);
}
