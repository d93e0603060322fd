import { consumerNameFor, Entities } from '@tandem/contracts';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CONSUMER_SETTINGS,
  ExternalPublishes,
  NatsServices,
  PROVISIONER_USER,
  ServiceTopologies,
  durableConsumers,
  entityOfSuffix,
  externalPermissions,
  provisionerPermissions,
  renderNatsServerConfig,
  servicePermissions,
  tandemNatsUsers,
} from '../src/index.js';

const prefix = 'tandem';

describe('the NATS topology', () => {
  it('gives every durable consumer the one short ack wait setting (30 s by default), not one sized to its work', () => {
    // Handlers heartbeat while they work, so an ack wait only bounds how long a dead process's messages wait.
    const settings = { ...DEFAULT_CONSUMER_SETTINGS, ackWaitMs: 2_500 };
    for (const consumer of durableConsumers()) {
      expect(consumer.ackWaitMs(DEFAULT_CONSUMER_SETTINGS), consumer.durable).toBe(30_000);
      expect(consumer.ackWaitMs(settings), consumer.durable).toBe(2_500);
    }
  });

  it('names every durable consumer once, on a subject of a known stream', () => {
    const names = durableConsumers().map((consumer) => consumerNameFor(prefix, consumer.durable));
    expect(new Set(names).size).toBe(names.length);
    for (const consumer of durableConsumers()) expect(Entities).toContain(entityOfSuffix(consumer.subject));
  });

  it('lets only approval publish approval.*', () => {
    for (const service of NatsServices) {
      const approvalSubjects = servicePermissions(service, prefix).publish.filter((subject) =>
        subject.startsWith(`${prefix}.approval.`),
      );
      if (service === 'approval') expect(approvalSubjects).toContain('tandem.approval.decided.v1');
      else expect(approvalSubjects).toEqual([]);
    }
    expect(externalPermissions('integration', prefix).publish.some((s) => s.includes('.approval.'))).toBe(
      false,
    );
  });

  it('gives no service stream or consumer admin rights, wildcards over message subjects or other inboxes', () => {
    for (const service of NatsServices) {
      const { publish, subscribe } = servicePermissions(service, prefix);
      for (const subject of publish) {
        expect(subject).not.toMatch(/^\$JS\.API\.(STREAM|CONSUMER)\.(CREATE|UPDATE|DELETE|DURABLE|PURGE)/);
        expect(subject).not.toMatch(/^\$JS\.API\.>$/);
        if (!subject.startsWith('$JS.ACK.')) expect(subject).not.toMatch(/[*>]/);
      }
      for (const subject of subscribe.filter((s) => s.startsWith('_INBOX'))) {
        expect(subject).toBe(`_INBOX.${service}.>`);
      }
      expect(subscribe.filter((subject) => subject.startsWith(`${prefix}.`))).toEqual(
        [
          ...ServiceTopologies[service].subscribes,
          ...ServiceTopologies[service].answers.map((name) => `query.${name}`),
        ].map((suffix) => `${prefix}.${suffix}`),
      );
    }
  });

  it('lets each service consume exactly its own durables', () => {
    const planner = servicePermissions('planner', prefix).publish;
    expect(planner).toContain('$JS.API.CONSUMER.MSG.NEXT.TANDEM_TASK.TANDEM_planner-intake');
    expect(planner).toContain('$JS.ACK.TANDEM_TASK.TANDEM_planner-intake.>');
    expect(planner.some((subject) => subject.includes('TANDEM_executor-'))).toBe(false);
    const executor = servicePermissions('executor', prefix).publish;
    expect(executor).toContain('$JS.API.CONSUMER.MSG.NEXT.TANDEM_APPROVAL.TANDEM_executor-approval-decided');
    expect(executor.some((subject) => subject.includes('TANDEM_approval-'))).toBe(false);
  });

  it('lets outside systems publish only the intake and cancel subjects and watch the outcomes', () => {
    expect(externalPermissions('integration', prefix)).toEqual({
      publish: ['tandem.task.requested.v1', 'tandem.task.cancel-requested.v1'],
      subscribe: [
        '_INBOX.integration.>',
        'tandem.task.completed.v1',
        'tandem.task.failed.v1',
        'tandem.task.cancelled.v1',
      ],
      allowResponses: false,
    });
    expect(ExternalPublishes).toHaveLength(2);
  });

  it('lets only learning answer requests, and only the provisioner use the JetStream API freely', () => {
    for (const service of NatsServices) {
      expect(servicePermissions(service, prefix).allowResponses).toBe(service === 'learning');
    }
    expect(provisionerPermissions()).toEqual({
      publish: ['$JS.API.>'],
      subscribe: [`_INBOX.${PROVISIONER_USER}.>`],
      allowResponses: false,
    });
  });

  it('renders a config without anonymous access, quoting subjects and referring to password variables', () => {
    const text = renderNatsServerConfig({
      header: ['test'],
      port: 4222,
      storeDir: '/data/js',
      users: tandemNatsUsers({
        prefix,
        password: (user) => ({ env: `P_${user.length}` }),
        externalUsers: ['ext'],
      }),
    });
    expect(text).not.toContain('no_auth_user');
    expect(text).toContain('user: "sandbox-runner"');
    expect(text).toContain('password: $P_14');
    expect(text).toContain('"$JS.API.INFO"');
    expect(() =>
      tandemNatsUsers({ prefix, password: () => ({ value: 'x' }), externalUsers: ['planner'] }),
    ).toThrow(/defined twice/);
    expect(() =>
      tandemNatsUsers({ prefix, password: () => ({ value: 'x' }), externalUsers: ['a.b'] }),
    ).toThrow(/invalid NATS user name/);
  });
});
