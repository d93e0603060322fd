import { DEFAULT_SUBJECT_PREFIX } from '@tandem/contracts';
import { renderNatsServerConfig, tandemNatsUsers } from '@tandem/bus';

/** The outside-system users of infra/nats/nats.conf. */
export const INFRA_EXTERNAL_USERS = ['integration'] as const;

/** The environment variable that holds a user's password in infra/nats/nats.conf (`NATS_SANDBOX_RUNNER_PASSWORD`). */
export function infraPasswordVariable(user: string): string {
  return `NATS_${user.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_PASSWORD`;
}

/**
 * The text of infra/nats/nats.conf: derived from packages/bus/src/topology.ts for the default prefix,
 * passwords from the nats-server process's environment. `pnpm --filter @tandem/launcher run nats:conf`
 * writes it; a test checks the committed file equals this and that `nats-server -t` accepts it.
 */
export function renderInfraNatsConfig(prefix: string = DEFAULT_SUBJECT_PREFIX): string {
  return renderNatsServerConfig({
    header: [
      'GENERATED from packages/bus/src/topology.ts by `pnpm --filter @tandem/launcher run nats:conf`:',
      'do not edit; change the topology and regenerate (a test fails while this file differs).',
      '',
      `NATS for Tandem in production-like mode (infra/docker-compose.yml), subject prefix \`${prefix}\`.`,
      'One user per service with only its own subjects (no stream or consumer admin rights), the',
      '`provisioner` that creates streams and consumers (`pnpm nats:provision`), and users for outside',
      'systems, which may only submit and cancel tasks and watch the outcomes. No `no_auth_user`: a',
      'connection without credentials is refused. Every user has its own inbox prefix `_INBOX.<user>`',
      '(nats.js: the `inboxPrefix` connect option), and only it may subscribe there.',
      'Passwords come from the environment of the nats-server process (docker-compose passes them).',
    ],
    serverName: 'tandem-nats-1',
    port: 4222,
    // Monitoring: /healthz for the compose health check, /varz etc. for a Prometheus exporter.
    httpPort: 8222,
    storeDir: '/data/jetstream',
    maxFileStore: '10GB',
    maxMemoryStore: '256MB',
    maxPayload: '8MB',
    users: tandemNatsUsers({
      prefix,
      password: (user) => ({ env: infraPasswordVariable(user) }),
      externalUsers: INFRA_EXTERNAL_USERS,
    }),
  });
}
