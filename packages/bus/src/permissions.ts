import { consumerNameFor, querySubjectFor, streamNameFor, subjectFor } from '@tandem/contracts';
import { maxDeliveriesAdvisorySubject } from './dead-letters.js';
import { entityOfSuffix } from './streams.js';
import {
  ExternalPublishes,
  ExternalSubscribes,
  NatsServices,
  ServiceTopologies,
  type NatsService,
} from './topology.js';

/** The NATS user that creates streams and consumers (`pnpm nats:provision`, the launcher); no service has its rights. */
export const PROVISIONER_USER = 'provisioner';

const USER_NAME = /^[A-Za-z0-9_-]+$/;

/** Throws unless `user` is usable as a NATS user name and an inbox token (letters, digits, '_', '-'). */
export function assertNatsUserName(user: string): string {
  if (!USER_NAME.test(user)) {
    throw new Error(`invalid NATS user name "${user}": use letters, digits, '_' or '-'`);
  }
  return user;
}

/**
 * The inbox prefix a user's connection uses (`_INBOX.planner`): replies, PubAcks and pulled messages go
 * to `_INBOX.<user>.>`, which only that user may subscribe to, so no one reads another's replies.
 */
export function inboxPrefixFor(user: string): string {
  return `_INBOX.${assertNatsUserName(user)}`;
}

/** What a NATS user may publish and subscribe to (nats-server `permissions`). */
export interface NatsPermissions {
  publish: string[];
  subscribe: string[];
  /** May publish to the reply subject of a request it received (a query responder). */
  allowResponses: boolean;
}

function unique(subjects: string[]): string[] {
  return [...new Set(subjects)];
}

/**
 * A service's permissions: its own published subjects and queries, and per durable consumer only what
 * consuming needs (consumer info, pull, ack, the max-deliveries advisory, reading a stored message for a
 * dead letter), and reading stored messages of the streams it publishes to (a publish whose PubAck was lost). No stream or consumer create, update or delete: the provisioner does that.
 */
export function servicePermissions(service: NatsService, prefix: string): NatsPermissions {
  const topology = ServiceTopologies[service];
  const publish: string[] = [
    ...topology.publishes.map((suffix) => subjectFor(prefix, suffix)),
    ...topology.requests.map((name) => querySubjectFor(prefix, name)),
    // jetstreamManager() checks that JetStream is enabled for the account.
    '$JS.API.INFO',
  ];
  const subscribe: string[] = [
    `${inboxPrefixFor(service)}.>`,
    ...topology.subscribes.map((suffix) => subjectFor(prefix, suffix)),
    ...topology.answers.map((name) => querySubjectFor(prefix, name)),
  ];
  // Streams it publishes to: the relay reads back whether a publish whose PubAck was lost was stored.
  const streams: string[] = topology.publishes.map((suffix) => streamNameFor(prefix, entityOfSuffix(suffix)));
  for (const consumer of topology.consumers) {
    const stream = streamNameFor(prefix, entityOfSuffix(consumer.subject));
    const name = consumerNameFor(prefix, consumer.durable);
    streams.push(stream);
    publish.push(
      `$JS.API.CONSUMER.INFO.${stream}.${name}`,
      `$JS.API.CONSUMER.MSG.NEXT.${stream}.${name}`,
      `$JS.ACK.${stream}.${name}.>`,
    );
    subscribe.push(maxDeliveriesAdvisorySubject(stream, name));
  }
  publish.push(...unique(streams).map((stream) => `$JS.API.STREAM.MSG.GET.${stream}`));
  return {
    publish: unique(publish),
    subscribe: unique(subscribe),
    allowResponses: topology.answers.length > 0,
  };
}

/** An outside system's permissions: submit and cancel tasks, watch the public outcomes. Nothing else. */
export function externalPermissions(user: string, prefix: string): NatsPermissions {
  return {
    publish: ExternalPublishes.map((suffix) => subjectFor(prefix, suffix)),
    subscribe: [
      `${inboxPrefixFor(user)}.>`,
      ...ExternalSubscribes.map((suffix) => subjectFor(prefix, suffix)),
    ],
    allowResponses: false,
  };
}

/** The provisioner's permissions: the JetStream API (streams and consumers), no message subjects. */
export function provisionerPermissions(user: string = PROVISIONER_USER): NatsPermissions {
  return { publish: ['$JS.API.>'], subscribe: [`${inboxPrefixFor(user)}.>`], allowResponses: false };
}

/** A password in a generated config: a reference to the server's environment, or the value itself. */
export type NatsPasswordRef = { env: string } | { value: string };

/** One user of a generated nats-server config. */
export interface NatsUserEntry {
  user: string;
  password: NatsPasswordRef;
  permissions: NatsPermissions;
  /** A comment line written above the user. */
  comment?: string;
}

/**
 * Every user of a Tandem deployment: the five services, the provisioner and the named outside systems.
 * `password` gives each user's password reference.
 */
export function tandemNatsUsers(options: {
  prefix: string;
  password: (user: string) => NatsPasswordRef;
  externalUsers: readonly string[];
}): NatsUserEntry[] {
  const services = NatsServices.map((service): NatsUserEntry => {
    const topology = ServiceTopologies[service];
    const consumes = topology.consumers.map((consumer) => consumer.subject);
    return {
      user: service,
      password: options.password(service),
      permissions: servicePermissions(service, options.prefix),
      comment:
        `${service}: consumes ${unique(consumes).join(', ') || 'nothing'}; ` +
        `publishes ${topology.publishes.join(', ') || 'nothing'}` +
        (topology.requests.length > 0 ? `; asks ${topology.requests.join(', ')}` : '') +
        (topology.answers.length > 0 ? `; answers ${topology.answers.join(', ')}` : ''),
    };
  });
  const provisioner: NatsUserEntry = {
    user: PROVISIONER_USER,
    password: options.password(PROVISIONER_USER),
    permissions: provisionerPermissions(),
    comment: `${PROVISIONER_USER}: creates and updates the streams and durable consumers (pnpm nats:provision)`,
  };
  const externals = options.externalUsers.map((user): NatsUserEntry => ({
    user: assertNatsUserName(user),
    password: options.password(user),
    permissions: externalPermissions(user, options.prefix),
    comment: `${user}: an outside system; submits and cancels tasks, watches their outcomes`,
  }));
  const all = [...services, provisioner, ...externals];
  const names = all.map((entry) => entry.user);
  const duplicate = names.find((name, index) => names.indexOf(name) !== index);
  if (duplicate !== undefined) throw new Error(`NATS user "${duplicate}" is defined twice`);
  return all;
}

/** Options of {@link renderNatsServerConfig}. */
export interface NatsServerConfigOptions {
  /** Comment lines at the top of the file. */
  header: readonly string[];
  serverName?: string;
  host?: string;
  port: number;
  /** The monitoring port (omitted: no monitoring endpoint). */
  httpPort?: number;
  storeDir: string;
  maxFileStore?: string;
  maxMemoryStore?: string;
  maxPayload?: string;
  users: readonly NatsUserEntry[];
}

function quote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function passwordOf(ref: NatsPasswordRef): string {
  if ('env' in ref) {
    if (!/^[A-Z_][A-Z0-9_]*$/.test(ref.env))
      throw new Error(`invalid environment variable name "${ref.env}"`);
    return `$${ref.env}`;
  }
  return quote(ref.value);
}

/**
 * A nats-server (2.9+) config with JetStream and the given users; there is no `no_auth_user`, so a
 * connection without credentials is refused. Subjects are quoted: unquoted, a leading `$` is a variable.
 */
export function renderNatsServerConfig(options: NatsServerConfigOptions): string {
  const lines: string[] = options.header.map((line) => (line === '' ? '#' : `# ${line}`));
  lines.push('');
  if (options.serverName !== undefined) lines.push(`server_name: ${quote(options.serverName)}`);
  if (options.host !== undefined) lines.push(`host: ${quote(options.host)}`);
  lines.push(`port: ${options.port}`);
  if (options.httpPort !== undefined) lines.push(`http_port: ${options.httpPort}`);
  lines.push('', 'jetstream {', `  store_dir: ${quote(options.storeDir)}`);
  if (options.maxFileStore !== undefined) lines.push(`  max_file_store: ${options.maxFileStore}`);
  if (options.maxMemoryStore !== undefined) lines.push(`  max_memory_store: ${options.maxMemoryStore}`);
  lines.push('}', '');
  if (options.maxPayload !== undefined) lines.push(`max_payload: ${options.maxPayload}`, '');
  lines.push('authorization {', '  users: [');
  for (const entry of options.users) {
    if (entry.comment !== undefined) lines.push(`    # ${entry.comment}`);
    lines.push(
      '    {',
      `      user: ${quote(assertNatsUserName(entry.user))}`,
      `      password: ${passwordOf(entry.password)}`,
      '      permissions: {',
      '        publish: [',
      ...entry.permissions.publish.map((subject) => `          ${quote(subject)}`),
      '        ]',
      '        subscribe: [',
      ...entry.permissions.subscribe.map((subject) => `          ${quote(subject)}`),
      '        ]',
    );
    if (entry.permissions.allowResponses) lines.push('        allow_responses: true');
    lines.push('      }', '    }');
  }
  lines.push('  ]', '}', '');
  return lines.join('\n');
}
