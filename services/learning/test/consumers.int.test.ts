import { randomUUID } from 'node:crypto';
import { handleMessage, type ConsumerDefinition } from '@tandem/bus';
import {
  ApprovalVerdictRecorded,
  CloudEventTypes,
  TaskOutcomeCloudEvent,
  createEnvelope,
} from '@tandem/contracts';
import { createDb, migrate, type Db } from '@tandem/db';
import { createLogger } from '@tandem/service-kit';
import { createTestDatabase, type TestDatabase } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LearningDeps } from '../src/consumers.js';
import { approvalVerdictRecorded } from '../src/handlers/approval-verdict-recorded.js';
import { taskCompleted } from '../src/handlers/task-completed.js';
import { taskFailed } from '../src/handlers/task-failed.js';
import { answerPatternsQuery } from '../src/patterns-query.js';

// Learning's consumers driven as the bus would (the framework's handleMessage), against Postgres.

let database: TestDatabase;
let db: Db;
const log = createLogger({ service: 'learning-test', level: 'silent' });
const seen: Array<{ kind: string; status: string }> = [];
const verdicts: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
  db = createDb({ url: database.url, poolMax: 6 });
}, 120_000);

afterAll(async () => {
  await db?.close();
  await database?.drop();
}, 60_000);

function deps(): LearningDeps {
  return {
    db,
    minSuccesses: 2,
    onPattern: (kind, status) => seen.push({ kind, status }),
    onFeedback: (verdict) => verdicts.push(verdict),
  };
}

async function deliver<T>(definition: ConsumerDefinition<LearningDeps, T>, message: T, messageId: string) {
  await handleMessage(db, definition, deps(), 5, message, {
    messageId,
    consumer: `test_${definition.durable}`,
    subject: definition.subject,
    streamSeq: 1,
    deliveryCount: 1,
    headers: {},
    json: message,
    log,
    working: () => undefined,
  });
}

function outcome(kind: string, succeeded: boolean) {
  const taskId = randomUUID();
  const base = {
    specversion: '1.0',
    id: randomUUID(),
    source: '/tandem/executor',
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    subject: taskId,
  };
  const data = { taskId, request: { source: 'urn:test', id: taskId }, kind, tools: ['run_code', 'respond'] };
  return TaskOutcomeCloudEvent.parse(
    succeeded
      ? {
          ...base,
          type: CloudEventTypes.taskCompleted,
          data: { ...data, status: 'completed', result: { answer: '5', steps: [] } },
        }
      : {
          ...base,
          type: CloudEventTypes.taskFailed,
          data: {
            ...data,
            status: 'failed',
            error: { code: 'SANDBOX.TIMEOUT', message: 'slow', retryable: false },
          },
        },
  );
}

describe('task outcomes', () => {
  it('count every parallel outcome of a kind once, and answer the strategy once it is active', async () => {
    const kind = `k${randomUUID().slice(0, 8)}`;
    const events = [outcome(kind, true), outcome(kind, true), outcome(kind, true), outcome(kind, false)];
    await Promise.all(
      events.map((event) =>
        deliver(event.data.status === 'completed' ? taskCompleted : taskFailed, event, event.id),
      ),
    );
    // A redelivery changes nothing.
    const first = events[0];
    if (first === undefined) throw new Error('no event');
    await deliver(taskCompleted, first, first.id);
    const row = await db.kysely
      .selectFrom('LearningPattern')
      .select(['successCount', 'failureCount', 'status', 'version'])
      .where('scope', '=', `kind:${kind}`)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ successCount: 3, failureCount: 1, status: 'active', version: 5 });
    const reply = await answerPatternsQuery(db, { kind });
    expect(reply.patterns).toHaveLength(1);
    expect(reply.patterns[0]).toMatchObject({ type: 'strategy', successCount: 3, failureCount: 1 });
    expect(seen.filter((entry) => entry.kind === kind)).toHaveLength(5);
  });
});

describe('verdicts', () => {
  it('are stored once as verdict feedback, counted only when stored', async () => {
    const envelope = createEnvelope(
      ApprovalVerdictRecorded,
      {
        approvalId: randomUUID(),
        taskId: randomUUID(),
        planId: randomUUID(),
        stepId: randomUUID(),
        agentId: null,
        tool: 'respond',
        actionClass: 'respond',
        verdict: 'rejected',
        reason: 'no',
        decidedBy: 'token:abc',
        arguments: { answer: 'x' },
        editedArguments: null,
        answer: null,
        riskLevel: null,
        riskReasons: [],
        trustAtDecision: null,
        mode: 'human',
        patternIds: [],
      },
      { correlationId: randomUUID() },
    );
    await deliver(approvalVerdictRecorded, envelope, envelope.id);
    await deliver(approvalVerdictRecorded, envelope, envelope.id);
    const rows = await db.kysely
      .selectFrom('Feedback')
      .select(['kind', 'verdict', 'comment'])
      .where('sourceEventId', '=', envelope.id)
      .execute();
    expect(rows).toEqual([{ kind: 'verdict', verdict: 'rejected', comment: 'no' }]);
    expect(verdicts).toEqual(['rejected']);
  });
});
