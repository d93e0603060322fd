import {
  ApprovalDecided,
  ApprovalRequested,
  ApprovalVerdictRecorded,
  ApprovalsDecided,
  PlanFailed,
  PlanProposed,
  PublicSubjects,
  SandboxRunCompleted,
  SandboxRunRequested,
  StepFinished,
  TaskAccepted,
  TaskReplanRequested,
} from '@tandem/contracts';

// The one list of what each service does on NATS. The provisioner creates every durable consumer
// below, the NATS permissions (infra/nats/nats.conf, the launcher's generated config) are derived from
// it, and a service connected with credentials refuses to consume a durable that is not listed here
// with the same subject. Add a consumer, a published subject or a query here first.

/** The five services that connect to NATS; each is also its NATS user name. */
export const NatsServices = ['planner', 'approval', 'executor', 'sandbox-runner', 'learning'] as const;
/** One of the five services. */
export type NatsService = (typeof NatsServices)[number];

/** Deployment settings that some consumers' settings derive from (the services read the same variables). */
export interface ConsumerSettings {
  /** `TANDEM_MAX_DELIVER` (default 5). */
  maxDeliver: number;
  /**
   * `TANDEM_ACK_WAIT_MS` (default 30 s): the ack wait of every consumer. Handlers are heartbeated while
   * they run, so it bounds how long the messages of a dead process wait, not how long work may take.
   */
  ackWaitMs: number;
}

/** The defaults of {@link ConsumerSettings}, the same as the services' config defaults. */
export const DEFAULT_CONSUMER_SETTINGS: ConsumerSettings = { maxDeliver: 5, ackWaitMs: 30_000 };

/** One durable pull consumer of a service. */
export interface DurableConsumerSpec {
  /** The durable name (`planner-intake`); the JetStream name is `consumerNameFor(prefix, durable)`. Wire name. */
  durable: string;
  /** The subject suffix it filters on (`task.requested.v1`). */
  subject: string;
  /** The ack wait the service passes to `consume` for it (every consumer: `settings.ackWaitMs`). */
  ackWaitMs: (settings: ConsumerSettings) => number;
}

/** What one service does on NATS (subjects without the prefix). */
export interface ServiceTopology {
  /** Its durable consumers. */
  consumers: readonly DurableConsumerSpec[];
  /** Subjects it publishes (through its outbox relay). */
  publishes: readonly string[];
  /** Plain (core) subscriptions besides its consumers. */
  subscribes: readonly string[];
  /** Query names it sends requests to (`<prefix>.query.<name>`). */
  requests: readonly string[];
  /** Query names it answers (subscribes to, and replies to the asker). */
  answers: readonly string[];
}

// One short ack wait for every consumer, sized to recovery: the consumer framework heartbeats a
// message while its handler runs (planning, a sandbox job), so long work needs no long ack wait.
const DEFAULT_ACK_WAIT = (settings: ConsumerSettings): number => settings.ackWaitMs;

/** Every service's NATS topology. */
export const ServiceTopologies: Readonly<Record<NatsService, ServiceTopology>> = {
  planner: {
    consumers: [
      { durable: 'planner-intake', subject: PublicSubjects.taskRequested, ackWaitMs: DEFAULT_ACK_WAIT },
      { durable: 'planner-planning', subject: TaskAccepted.subjectSuffix, ackWaitMs: DEFAULT_ACK_WAIT },
      { durable: 'planner-replan', subject: TaskReplanRequested.subjectSuffix, ackWaitMs: DEFAULT_ACK_WAIT },
      {
        durable: 'planner-task-cancel-requested',
        subject: PublicSubjects.taskCancelRequested,
        ackWaitMs: DEFAULT_ACK_WAIT,
      },
      {
        durable: 'planner-task-completed',
        subject: PublicSubjects.taskCompleted,
        ackWaitMs: DEFAULT_ACK_WAIT,
      },
      { durable: 'planner-task-failed', subject: PublicSubjects.taskFailed, ackWaitMs: DEFAULT_ACK_WAIT },
      {
        durable: 'planner-task-cancelled',
        subject: PublicSubjects.taskCancelled,
        ackWaitMs: DEFAULT_ACK_WAIT,
      },
    ],
    publishes: [
      TaskAccepted.subjectSuffix,
      PlanProposed.subjectSuffix,
      PlanFailed.subjectSuffix,
      // POST /v1/tasks/:id/cancel
      PublicSubjects.taskCancelRequested,
    ],
    subscribes: [],
    requests: ['learning-patterns'],
    answers: [],
  },
  approval: {
    consumers: [
      { durable: 'approval-plan-proposed', subject: PlanProposed.subjectSuffix, ackWaitMs: DEFAULT_ACK_WAIT },
      {
        durable: 'approval-task-cancel-requested',
        subject: PublicSubjects.taskCancelRequested,
        ackWaitMs: DEFAULT_ACK_WAIT,
      },
      {
        durable: 'approval-task-completed',
        subject: PublicSubjects.taskCompleted,
        ackWaitMs: DEFAULT_ACK_WAIT,
      },
      { durable: 'approval-task-failed', subject: PublicSubjects.taskFailed, ackWaitMs: DEFAULT_ACK_WAIT },
      // A completed step frees the requests that wait for its values (approval with values).
      { durable: 'approval-step-finished', subject: StepFinished.subjectSuffix, ackWaitMs: DEFAULT_ACK_WAIT },
    ],
    // Only approval publishes approval.*: the executor acts on approval.decided.
    publishes: [
      ApprovalRequested.subjectSuffix,
      ApprovalDecided.subjectSuffix,
      ApprovalsDecided.subjectSuffix,
      ApprovalVerdictRecorded.subjectSuffix,
    ],
    subscribes: [],
    requests: [],
    answers: [],
  },
  executor: {
    consumers: [
      {
        durable: 'executor-plan-proposed',
        subject: PlanProposed.subjectSuffix,
        ackWaitMs: DEFAULT_ACK_WAIT,
      },
      {
        durable: 'executor-approval-decided',
        subject: ApprovalDecided.subjectSuffix,
        ackWaitMs: DEFAULT_ACK_WAIT,
      },
      {
        durable: 'executor-approval-batch-decided',
        subject: ApprovalsDecided.subjectSuffix,
        ackWaitMs: DEFAULT_ACK_WAIT,
      },
      {
        durable: 'executor-sandbox-run-completed',
        subject: SandboxRunCompleted.subjectSuffix,
        ackWaitMs: DEFAULT_ACK_WAIT,
      },
      { durable: 'executor-plan-failed', subject: PlanFailed.subjectSuffix, ackWaitMs: DEFAULT_ACK_WAIT },
      {
        durable: 'executor-task-cancel-requested',
        subject: PublicSubjects.taskCancelRequested,
        ackWaitMs: DEFAULT_ACK_WAIT,
      },
    ],
    publishes: [
      SandboxRunRequested.subjectSuffix,
      StepFinished.subjectSuffix,
      TaskReplanRequested.subjectSuffix,
      PublicSubjects.taskCompleted,
      PublicSubjects.taskFailed,
      PublicSubjects.taskCancelled,
      // A task past its deadline is cancelled through the same public subject.
      PublicSubjects.taskCancelRequested,
    ],
    subscribes: [],
    requests: ['learning-patterns'],
    answers: [],
  },
  'sandbox-runner': {
    consumers: [
      {
        durable: 'sandbox-run-requested',
        subject: SandboxRunRequested.subjectSuffix,
        // A job may run for the longest timeout allowed: the framework heartbeats it meanwhile.
        ackWaitMs: DEFAULT_ACK_WAIT,
      },
    ],
    publishes: [SandboxRunCompleted.subjectSuffix],
    // Every replica sees every cancel (to kill the job it runs): a plain subscription.
    subscribes: [PublicSubjects.taskCancelRequested],
    requests: [],
    answers: [],
  },
  learning: {
    consumers: [
      {
        durable: 'learning-task-completed',
        subject: PublicSubjects.taskCompleted,
        ackWaitMs: DEFAULT_ACK_WAIT,
      },
      { durable: 'learning-task-failed', subject: PublicSubjects.taskFailed, ackWaitMs: DEFAULT_ACK_WAIT },
      {
        durable: 'learning-approval-verdict',
        subject: ApprovalVerdictRecorded.subjectSuffix,
        ackWaitMs: DEFAULT_ACK_WAIT,
      },
    ],
    publishes: [],
    subscribes: [],
    requests: [],
    answers: ['learning-patterns'],
  },
};

/** What systems outside Tandem may publish: submit a task, ask to cancel one. */
export const ExternalPublishes: readonly string[] = [
  PublicSubjects.taskRequested,
  PublicSubjects.taskCancelRequested,
];
/** What systems outside Tandem may subscribe to: the task outcomes, which are public. */
export const ExternalSubscribes: readonly string[] = [
  PublicSubjects.taskCompleted,
  PublicSubjects.taskFailed,
  PublicSubjects.taskCancelled,
];

/** The ack wait of a service's durable consumer under these settings (what it passes to `consume`). */
export function ackWaitMsOf(
  service: NatsService,
  durable: string,
  settings: ConsumerSettings = DEFAULT_CONSUMER_SETTINGS,
): number {
  const spec = ServiceTopologies[service].consumers.find((consumer) => consumer.durable === durable);
  if (spec === undefined)
    throw new Error(`${service} declares no durable consumer ${durable} in topology.ts`);
  return spec.ackWaitMs(settings);
}

/** Every durable consumer of every service, with its service. */
export function durableConsumers(): Array<DurableConsumerSpec & { service: NatsService }> {
  return NatsServices.flatMap((service) =>
    ServiceTopologies[service].consumers.map((consumer) => ({ ...consumer, service })),
  );
}

/** True when `name` is one of the five services. */
export function isNatsService(name: string): name is NatsService {
  return NatsServices.some((service) => service === name);
}
