import { DEFAULT_BUS_PAYLOAD_LIMITS, querySubjectFor, scanJsonText } from '@tandem/contracts';
import { Counter, type ServiceRuntime } from '@tandem/service-kit';
import type { LearningConfig } from './config.js';
import type { LearningDeps } from './consumers.js';
import { approvalVerdictRecorded } from './handlers/approval-verdict-recorded.js';
import { taskCompleted } from './handlers/task-completed.js';
import { taskFailed } from './handlers/task-failed.js';
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
  const feedback = new Counter({
    name: 'tandem_learning_feedback_total',
    help: 'Human verdicts stored as feedback, by verdict',
    labelNames: ['verdict'],
    registers: [runtime.metrics.registry],
  });
  const consumerDeps: LearningDeps = {
    db,
    minSuccesses: config.TANDEM_LEARNING_MIN_SUCCESSES,
    onPattern: (kind, status) => updates.inc({ kind, status }),
    onFeedback: (verdict) => feedback.inc({ verdict }),
  };
  const delivery = { concurrency: 2 };
  const consumers = [
    await runtime.start(taskCompleted, consumerDeps, delivery),
    await runtime.start(taskFailed, consumerDeps, delivery),
    await runtime.start(approvalVerdictRecorded, consumerDeps, delivery),
  ];

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
