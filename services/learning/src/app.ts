import {
  ApprovalVerdictRecorded,
  DEFAULT_BUS_PAYLOAD_LIMITS,
  PublicSubjects,
  TaskOutcomeCloudEvent,
  querySubjectFor,
  scanJsonText,
} from '@tandem/contracts';
import { Counter, type ServiceRuntime } from '@tandem/service-kit';
import type { LearningConfig } from './config.js';
import {
  handleTaskOutcome,
  LEARNING_COMPLETED_CONSUMER,
  LEARNING_FAILED_CONSUMER,
} from './handlers/task-outcome.js';
import { handleVerdict, LEARNING_VERDICT_CONSUMER } from './handlers/verdict.js';
import { answerPatternsQuery } from './patterns-query.js';

/** The learning service: turns task outcomes into strategy patterns and answers pattern queries. */
export async function createLearning(deps: {
  runtime: ServiceRuntime;
  config: LearningConfig;
}): Promise<void> {
  const { runtime, config } = deps;
  const { db, bus, log } = runtime;
  const updates = new Counter({
    name: 'tandem_learning_pattern_updates_total',
    help: 'Strategy pattern updates by kind and status',
    labelNames: ['kind', 'status'],
    registers: [runtime.metrics.registry],
  });
  const queries = new Counter({
    name: 'tandem_learning_queries_total',
    help: 'Pattern queries answered by outcome',
    labelNames: ['outcome'],
    registers: [runtime.metrics.registry],
  });
  const handlerDeps = {
    db,
    minSuccesses: config.TANDEM_LEARNING_MIN_SUCCESSES,
    onPattern: (kind: string, status: string) => updates.inc({ kind, status }),
  };
  const consumers = await Promise.all(
    [
      { durable: LEARNING_COMPLETED_CONSUMER, subject: PublicSubjects.taskCompleted },
      { durable: LEARNING_FAILED_CONSUMER, subject: PublicSubjects.taskFailed },
    ].map(({ durable, subject }) =>
      runtime.consume({
        durable,
        subject,
        schema: TaskOutcomeCloudEvent,
        messageId: (event) => event.id,
        maxDeliver: config.TANDEM_MAX_DELIVER,
        concurrency: 2,
        handle: (event, context) =>
          handleTaskOutcome(handlerDeps, event, {
            consumer: durable,
            messageId: context.messageId,
            log: context.log,
          }),
      }),
    ),
  );

  const feedback = new Counter({
    name: 'tandem_learning_feedback_total',
    help: 'Human verdicts stored as feedback, by verdict',
    labelNames: ['verdict'],
    registers: [runtime.metrics.registry],
  });
  const verdicts = await runtime.consume({
    durable: LEARNING_VERDICT_CONSUMER,
    subject: ApprovalVerdictRecorded.subjectSuffix,
    schema: ApprovalVerdictRecorded.envelope,
    messageId: (envelope) => envelope.id,
    maxDeliver: config.TANDEM_MAX_DELIVER,
    concurrency: 2,
    handle: (envelope, context) =>
      handleVerdict({ db, onStored: (verdict) => feedback.inc({ verdict }) }, envelope, {
        messageId: context.messageId,
        log: context.log,
      }),
  });
  consumers.push(verdicts);

  // Core request/reply: a query that goes unanswered costs the planner nothing but its patterns.
  const subscription = bus.nc.subscribe(querySubjectFor(config.TANDEM_SUBJECT_PREFIX, 'learning-patterns'), {
    queue: 'learning',
    callback: (error, message) => {
      if (error) {
        log.warn({ err: error }, 'pattern query subscription error');
        return;
      }
      void (async () => {
        try {
          const text = new TextDecoder().decode(message.data);
          // Size and depth on the raw text first, as for every bus payload: nothing is parsed past them.
          const scan = scanJsonText(text, DEFAULT_BUS_PAYLOAD_LIMITS);
          if (!scan.ok) throw new Error(`pattern query refused: ${scan.problem} (limit ${scan.limit})`);
          const reply = await answerPatternsQuery(db, JSON.parse(text));
          message.respond(new TextEncoder().encode(JSON.stringify(reply)));
          queries.inc({ outcome: 'ok' });
        } catch (queryError) {
          log.warn({ err: queryError }, 'could not answer a pattern query');
          message.respond(new TextEncoder().encode(JSON.stringify({ patterns: [] })));
          queries.inc({ outcome: 'error' });
        }
      })();
    },
  });
  runtime.onStop(async () => {
    subscription.unsubscribe();
    await Promise.all(consumers.map((consumer) => consumer.stop()));
  });
}
