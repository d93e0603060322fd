import { randomUUID } from 'node:crypto';
import {
  ApprovalDecided,
  ApprovalsDecided,
  ApprovalRequested,
  CloudEventTypes,
  PlanProposed,
  PublicSubjects,
  consumerNameFor,
  toolRegistry,
  createEnvelope,
  streamNameFor,
  type Envelope,
  type EventData,
  type PlanOrigin,
  type RiskClass,
} from '@tandem/contracts';
import { json, migrate } from '@tandem/db';
import { createLogger, createServiceRuntime, parseConfig, type ServiceRuntime } from '@tandem/service-kit';
import {
  cleanupNatsPrefix,
  createTestDatabase,
  createTestToken,
  createTestPrefix,
  findNats,
  waitFor,
  type TestDatabase,
} from '@tandem/testing';
import { createApproval } from '../src/app.js';
import { ApprovalConfig } from '../src/config.js';
import { PLAN_PROPOSED_CONSUMER } from '../src/handlers/plan-proposed.js';
import type { RiskOpinion } from '../src/risk-opinion.js';

/** A step to plan: the tool, its arguments and its risk class. */
export interface StepSpec {
  tool: string;
  arguments: Record<string, unknown>;
  riskClass: RiskClass;
}

/** A planned task as the planner would have stored it. */
export interface SeededTask {
  taskId: string;
  source: string;
  externalId: string;
}

type PlanData = EventData<typeof PlanProposed>;

/** The approval service running in-process against its own test database and subject prefix. */
export interface Harness {
  prefix: string;
  database: TestDatabase;
  runtime: ServiceRuntime;
  /** `http://127.0.0.1:<port>` of the approval API. */
  baseUrl: string;
  /** Bearer tokens in the test database; `post` and `get` send the approver token unless told otherwise. */
  tokens: { approver: string; admin: string };
  /** Every decision of an `approval.batch-decided` published so far (policy decisions at plan time). */
  autoDecided: Array<
    EventData<typeof ApprovalsDecided>['decisions'][number] & { taskId: string; planId: string }
  >;
  /** Every `approval.decided` published so far. */
  decided: Array<Envelope<EventData<typeof ApprovalDecided>>>;
  /** Every `approval.requested` published so far. */
  requested: Array<Envelope<EventData<typeof ApprovalRequested>>>;
  /** Inserts a Task row (the planner's) and returns its ids. */
  seedTask(options?: {
    source?: string;
    externalId?: string;
    agentId?: string;
    /** `token:<id>` for a task submitted over HTTP (its agent's trust applies); null or absent: from NATS. */
    submittedBy?: string | null;
    input?: Record<string, unknown>;
  }): Promise<SeededTask>;
  /** Inserts a Plan and its PlanStep rows (the planner's) and returns the `plan.proposed` data for them. */
  seedPlan(
    task: SeededTask,
    version: number,
    steps: StepSpec[],
    options?: { supersedes?: string; origin?: PlanOrigin; editedBy?: string; agentId?: string },
  ): Promise<PlanData>;
  /** Publishes a `plan.proposed` envelope; `msgId` defaults to the envelope id. */
  publishPlan(envelope: Envelope<PlanData>, msgId?: string): Promise<number>;
  /** Publishes `plan.proposed` for the data and waits until the approval service handled it. */
  proposeAndWait(plan: PlanData): Promise<Envelope<PlanData>>;
  /** Publishes any payload on the public cancel-requested subject; returns its stream sequence. */
  publishCancel(payload: unknown): Promise<number>;
  /** Publishes raw bytes (not JSON-encoded) on the public cancel-requested subject; returns its stream sequence. */
  publishRawCancel(raw: string): Promise<number>;
  /** A valid `tandem.task.cancel-requested` CloudEvent with the given data. */
  cancelEvent(data: Record<string, unknown>): { id: string; source: string; [key: string]: unknown };
  /** Waits until a durable consumer acknowledged every message up to `streamSeq` of the entity's stream. */
  waitForAck(durable: string, entity: 'task' | 'plan' | 'step', streamSeq: number): Promise<void>;
  /** `token: null` sends no Authorization header. */
  post(
    path: string,
    body: unknown,
    options?: { token?: string | null },
  ): Promise<{ status: number; body: Record<string, unknown> }>;
  get(
    path: string,
    options?: { token?: string | null },
  ): Promise<{ status: number; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

/** Starts the approval service (TANDEM_AUTO_APPROVE=read: run_code needs a human, respond does not). */
export async function createHarness(
  options: {
    env?: Record<string, string>;
    opinion?: RiskOpinion;
    /** Groups of the approver token `post` and `get` send (none: it sees requests without a group). */
    approverGroups?: string[];
  } = {},
): Promise<Harness> {
  const natsUrl = (await findNats()).url;
  const prefix = createTestPrefix();
  const database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
  const tokens = {
    approver: (
      await createTestToken(database.url, { role: 'approver', groups: options.approverGroups ?? [] })
    ).token,
    admin: (await createTestToken(database.url, { role: 'admin' })).token,
  };
  const config = parseConfig(ApprovalConfig, {
    DATABASE_URL: database.url,
    NATS_URL: natsUrl,
    TANDEM_SUBJECT_PREFIX: prefix,
    TANDEM_AUTO_APPROVE: 'read',
    TANDEM_MAX_DELIVER: '3',
    TANDEM_DB_POOL_MAX: '8',
    ...options.env,
  });
  const log = createLogger({ service: 'approval', level: process.env['LOG_LEVEL'] ?? 'silent' });
  let runtime: ServiceRuntime;
  try {
    runtime = await createServiceRuntime({ service: 'approval', config, log });
  } catch (error) {
    await database.drop();
    throw error;
  }
  const decided: Harness['decided'] = [];
  const autoDecided: Harness['autoDecided'] = [];
  const requested: Harness['requested'] = [];
  const close = async (): Promise<void> => {
    await runtime.stop();
    await cleanupNatsPrefix(natsUrl, prefix);
    await database.drop();
  };
  try {
    await createApproval({
      runtime,
      config,
      env: { ...process.env, ...options.env },
      ...(options.opinion ? { opinion: options.opinion } : {}),
    });
    const decidedConsumer = await runtime.bus.consume({
      durable: 'test-approval-decided',
      subject: ApprovalDecided.subjectSuffix,
      schema: ApprovalDecided.envelope,
      messageId: (envelope) => envelope.id,
      handle: async (envelope) => void decided.push(envelope),
    });
    runtime.onStop(() => decidedConsumer.stop());
    const batchConsumer = await runtime.bus.consume({
      durable: 'test-approval-batch-decided',
      subject: ApprovalsDecided.subjectSuffix,
      schema: ApprovalsDecided.envelope,
      messageId: (envelope) => envelope.id,
      handle: async (envelope) => {
        for (const decision of envelope.data.decisions)
          autoDecided.push({ ...decision, taskId: envelope.data.taskId, planId: envelope.data.planId });
      },
    });
    runtime.onStop(() => batchConsumer.stop());
    const requestedConsumer = await runtime.bus.consume({
      durable: 'test-approval-requested',
      subject: ApprovalRequested.subjectSuffix,
      schema: ApprovalRequested.envelope,
      messageId: (envelope) => envelope.id,
      handle: async (envelope) => void requested.push(envelope),
    });
    runtime.onStop(() => requestedConsumer.stop());
  } catch (error) {
    await close();
    throw error;
  }
  const port = await runtime.listen(0, '127.0.0.1');
  const baseUrl = `http://127.0.0.1:${port}`;
  const { db } = runtime;

  async function call(
    method: string,
    path: string,
    body: unknown,
    options: { token?: string | null },
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const token = options.token === undefined ? tokens.approver : options.token;
    const headers: Record<string, string> = {
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    };
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  const harness: Harness = {
    prefix,
    database,
    runtime,
    baseUrl,
    tokens,
    decided,
    autoDecided,
    requested,
    async seedTask(options = {}) {
      const taskId = randomUUID();
      const source = options.source ?? 'urn:test:approval';
      const externalId = options.externalId ?? randomUUID();
      await db.kysely
        .insertInto('Task')
        .values({
          id: taskId,
          source,
          externalId,
          requestHash: 'test',
          goal: 'a test task',
          status: 'planned',
          correlationId: taskId,
          agentId: options.agentId ?? null,
          submittedBy: options.submittedBy ?? null,
          input: options.input ? json(options.input) : null,
          updatedAt: new Date(),
        })
        .execute();
      return { taskId, source, externalId };
    },
    async seedPlan(task, version, steps, options = {}) {
      const planId = randomUUID();
      await db.kysely
        .insertInto('Plan')
        .values({
          id: planId,
          taskId: task.taskId,
          version,
          origin: options.origin ?? (version === 1 ? 'model' : 'replan'),
          supersedesId: options.supersedes ?? null,
          editedBy: options.editedBy ?? null,
        })
        .execute();
      const planned = steps.map((step, index) => ({
        stepId: randomUUID(),
        key: `s${index + 1}`,
        index,
        tool: step.tool,
        arguments: step.arguments,
        riskClass: step.riskClass,
        sideEffects: toolRegistry.get(step.tool)?.sideEffects ?? false,
        dependsOn: [],
      }));
      for (const step of planned) {
        await db.kysely
          .insertInto('PlanStep')
          .values({
            id: step.stepId,
            planId,
            stepKey: step.key,
            index: step.index,
            dependsOn: [],
            tool: step.tool,
            arguments: json(step.arguments),
            riskClass: step.riskClass,
            idempotencyKey: `${planId}:${step.key}`,
          })
          .execute();
      }
      return PlanProposed.data.parse({
        taskId: task.taskId,
        planId,
        version,
        request: { source: task.source, id: task.externalId },
        kind: 'general',
        agentId: options.agentId ?? null,
        steps: planned,
        ...(options.origin ? { origin: options.origin } : {}),
        ...(options.supersedes ? { supersedes: options.supersedes } : {}),
        ...(options.editedBy ? { editedBy: options.editedBy } : {}),
      });
    },
    async publishPlan(envelope, msgId) {
      const ack = await runtime.bus.publish(runtime.bus.subject(PlanProposed.subjectSuffix), envelope, {
        msgId: msgId ?? envelope.id,
      });
      return ack.seq;
    },
    async proposeAndWait(plan) {
      const envelope = createEnvelope(PlanProposed, plan, { correlationId: plan.taskId });
      const seq = await harness.publishPlan(envelope);
      await harness.waitForAck(PLAN_PROPOSED_CONSUMER, 'plan', seq);
      return envelope;
    },
    async publishCancel(payload) {
      const ack = await runtime.bus.publish(
        runtime.bus.subject(PublicSubjects.taskCancelRequested),
        payload,
        {
          msgId: randomUUID(),
        },
      );
      return ack.seq;
    },
    async publishRawCancel(raw) {
      const ack = await runtime.bus.js.publish(runtime.bus.subject(PublicSubjects.taskCancelRequested), raw, {
        msgID: randomUUID(),
      });
      return ack.seq;
    },
    cancelEvent(data) {
      return {
        specversion: '1.0',
        id: randomUUID(),
        source: 'urn:test:canceller',
        type: CloudEventTypes.taskCancelRequested,
        datacontenttype: 'application/json',
        data,
      };
    },
    async waitForAck(durable, entity, streamSeq) {
      const stream = streamNameFor(prefix, entity);
      const name = consumerNameFor(prefix, durable);
      await waitFor(
        async () => {
          const info = await runtime.bus.jsm.consumers.info(stream, name);
          return info.ack_floor.stream_seq >= streamSeq && info.num_ack_pending === 0;
        },
        { description: `${durable} to acknowledge stream sequence ${streamSeq}`, timeoutMs: 15_000 },
      );
    },
    post: (path, body, options = {}) => call('POST', path, body, options),
    get: (path, options = {}) => call('GET', path, undefined, options),
    close,
  };
  return harness;
}

/** Steps of a typical plan: a run_code that needs a human (auto-approve is `read`), then respond. */
export const RUN_THEN_RESPOND: StepSpec[] = [
  { tool: 'run_code', arguments: { language: 'python', code: 'result = 6 * 7' }, riskClass: 'compute' },
  { tool: 'respond', arguments: { answer: 'The answer is {{steps.s1.value}}.' }, riskClass: 'read' },
];
