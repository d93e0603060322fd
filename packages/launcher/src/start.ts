import { homedir } from 'node:os';
import { join } from 'node:path';
import { migrate } from '@tandem/db';
import { isModelEndpointConfigured } from '@tandem/models';
import { getFreePort } from '@tandem/testing';
import { DEMO_TASK, startDemoModel } from './demo-model.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded-postgres.js';
import { provisionAs, startAuthenticatedNats, type NatsCredentials } from './nats-auth.js';
import { consumerSettingsOf, parseProvisionConfig } from './provision-config.js';
import { PORT_SETTINGS, SERVICES, type ServiceName } from './paths.js';
import { formatLogLine, startServices } from './services.js';
import { submitAndFollow } from './demo-run.js';
import { createDemoToken, ensureAdminToken } from './tokens.js';

// `pnpm start`: the whole of Tandem on one machine with the least setup. This file is a composition
// root, so it reads the environment; services get theirs from here.
const env = process.env;
const say = (line: string) => process.stdout.write(`${line}\n`);
const stopSteps: Array<() => Promise<void>> = [];

async function shutdown(code: number): Promise<never> {
  for (const step of stopSteps.reverse()) {
    try {
      await step();
    } catch (error) {
      process.stderr.write(
        `shutdown step failed: ${error instanceof Error ? error.message : String(error)}\n`,
      );
    }
  }
  process.exit(code);
}

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    say('\nstopping Tandem...');
    void shutdown(0);
  });
}

// Embedded data (PGlite's files, a started nats-server's JetStream store) lives under one root.
const dataRoot = env['TANDEM_DATA_DIR'] ?? join(homedir(), '.tandem');

try {
  let databaseUrl = env['DATABASE_URL'];
  let embedded: EmbeddedPostgres | undefined;
  if (!databaseUrl) {
    const dataDir = join(dataRoot, 'pglite');
    embedded = await startEmbeddedPostgres({ dataDir, port: await getFreePort() });
    stopSteps.push(() => embedded?.stop() ?? Promise.resolve());
    databaseUrl = embedded.url;
    say(`postgres: embedded PGlite (data in ${dataDir}); set DATABASE_URL to use your own Postgres`);
  } else {
    say('postgres: DATABASE_URL');
  }
  const migration = await migrate({ url: databaseUrl });
  say(
    `database: ${migration.applied.length > 0 ? `applied ${migration.applied.join(', ')}` : 'schema up to date'}`,
  );
  // Before any service runs: the approval service then finds the admin token and prints nothing.
  const admin = await ensureAdminToken(databaseUrl, { token: env['TANDEM_ADMIN_TOKEN'] });
  const adminPort = env[PORT_SETTINGS.approval.variable] ?? String(PORT_SETTINGS.approval.defaultPort);
  if (admin.kind === 'generated') {
    say('');
    say('##############################################################################');
    say('#  ADMIN TOKEN (shown this once; store it now, it is never shown again):');
    say(`#    ${admin.token}`);
    say('#  Every API call needs a token. Create one for your submissions with it:');
    say(`#    curl -X POST localhost:${adminPort}/v1/tokens -H 'authorization: Bearer <admin token>' \\`);
    say(`#      -H 'content-type: application/json' -d '{"name":"me","role":"submitter","agents":["*"]}'`);
    say('##############################################################################');
    say('');
  } else if (admin.kind === 'from-env') {
    say(`api tokens: admin token from TANDEM_ADMIN_TOKEN${admin.created ? ' (stored)' : ''}`);
  } else {
    say(
      `api tokens: ${admin.count === 1 ? 'an admin token exists' : `${admin.count} admin tokens exist`} ` +
        '(shown once, at the first start; lost it? start once with TANDEM_ADMIN_TOKEN=<32+ characters> to add one)',
    );
  }

  let natsUrl = env['NATS_URL'];
  let natsCredentials: Record<ServiceName, NatsCredentials> | undefined;
  if (!natsUrl) {
    // A nats-server of our own with one user per service (only its own subjects) and no anonymous
    // access; its JetStream store beside the embedded database, so messages in flight survive a restart.
    const provisioning = parseProvisionConfig(env);
    const nats = await startAuthenticatedNats({
      port: await getFreePort(),
      prefix: provisioning.TANDEM_SUBJECT_PREFIX,
      storeDir: join(dataRoot, 'nats'),
      authDir: join(dataRoot, 'nats-auth'),
    });
    stopSteps.push(() => nats.stop());
    natsUrl = nats.url;
    natsCredentials = nats.services;
    // The services may not create streams or consumers: the provisioner does, before they start.
    const provisioned = await provisionAs({
      servers: nats.url,
      credentials: nats.provisioner,
      prefix: provisioning.TANDEM_SUBJECT_PREFIX,
      settings: consumerSettingsOf(provisioning),
    });
    const created = Object.values(provisioned.consumers).filter((change) => change !== 'unchanged').length;
    say(
      `nats: started nats-server at ${nats.url}, one user per service (passwords in ${nats.credentialsFile}); ` +
        `${created > 0 ? `provisioned ${created} consumers` : 'streams and consumers up to date'}`,
    );
  } else {
    say(`nats: ${natsUrl}`);
  }

  const modelEnv: Record<string, string> = {};
  const demo = !isModelEndpointConfigured(env);
  if (demo) {
    const server = await startDemoModel();
    stopSteps.push(() => server.close());
    Object.assign(modelEnv, {
      OPENAI_BASE_URL: server.url,
      OPENAI_API_KEY: 'demo',
      TANDEM_PLANNING_MODEL: 'tandem-demo-planner',
      TANDEM_CODE_MODEL: 'tandem-demo-coder',
    });
    say('');
    say('############################################################################');
    say('#  NO MODEL ENDPOINT CONFIGURED: running on the DEMO MODEL (scripted answers). #');
    say('#  It only knows the built-in demo task. Set OPENAI_BASE_URL / OPENAI_API_KEY  #');
    say('#  and TANDEM_PLANNING_MODEL / TANDEM_CODE_MODEL for a real model.              #');
    say('############################################################################');
    say('');
  }

  const ports = Object.fromEntries(
    SERVICES.map((service) => [
      service,
      Number(env[PORT_SETTINGS[service].variable] ?? PORT_SETTINGS[service].defaultPort),
    ]),
  ) as Record<ServiceName, number>;
  const quiet = env['TANDEM_START_LOGS'] === 'quiet';
  const services = await startServices({
    env: {
      ...env,
      ...modelEnv,
      DATABASE_URL: databaseUrl,
      NATS_URL: natsUrl,
      // PGlite is one single-threaded Postgres: keep the sum of pools below its connection limit.
      TANDEM_DB_POOL_MAX: embedded ? '3' : (env['TANDEM_DB_POOL_MAX'] ?? '5'),
      // PGlite is one server session for every connection: a statement name prepared by one would clash.
      ...(embedded ? { TANDEM_DB_PREPARED_STATEMENTS: 'false' } : {}),
      LOG_LEVEL: env['LOG_LEVEL'] ?? 'info',
    },
    ports,
    ...(natsCredentials === undefined ? {} : { natsCredentials }),
    onLine: (service, line) => {
      if (!quiet) process.stdout.write(`${formatLogLine(service, line)}\n`);
    },
    // A service that exits without being asked is started again with backoff; said loudly, quiet or not.
    onRestart: (event) => {
      process.stderr.write(`${formatLogLine('launcher', event.message)}\n`);
    },
  });
  stopSteps.push(() => services.stop());
  say('');
  say('Tandem is running:');
  for (const service of SERVICES)
    say(`  ${service.padEnd(15)} ${services.url(service)}  (/healthz /readyz /metrics)`);
  say(
    `  submit a task:  curl -X POST ${services.url('planner')}/v1/tasks -H 'authorization: Bearer <token>' -H 'content-type: application/json' -d '{"goal":"..."}'`,
  );
  say(
    `  pending approvals: curl -H 'authorization: Bearer <token>' ${services.url('approval')}/v1/approvals?status=pending`,
  );
  say('');

  if (demo && env['TANDEM_DEMO'] !== 'off') {
    say(`demo: submitting "${DEMO_TASK.goal}" with a submitter token of its own`);
    const outcome = await submitAndFollow({
      plannerUrl: services.url('planner'),
      token: await createDemoToken(databaseUrl),
      task: DEMO_TASK,
      timeoutMs: 120_000,
      say,
    });
    if (env['TANDEM_EXIT_AFTER_DEMO'] === '1') await shutdown(outcome === 'completed' ? 0 : 1);
  }
  say('Press Ctrl-C to stop.');
} catch (error) {
  process.stderr.write(
    `tandem failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  await shutdown(1);
}
