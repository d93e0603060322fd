import { randomUUID } from 'node:crypto';
import type { TaskOutcomeCloudEvent } from '@tandem/contracts';
import { markProcessed, type Db } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import {
  StrategyProvenance,
  applyOutcome,
  confidence,
  strategyContent,
  type Outcome,
} from '../domain/strategy.js';

/** Consumer names, one per outcome subject (wire names). */
export const LEARNING_COMPLETED_CONSUMER = 'learning-task-completed';
/** Consumer of `task.failed.v1`. */
export const LEARNING_FAILED_CONSUMER = 'learning-task-failed';

const SIGNATURE = 'plan-shape';

/**
 * Keeps one `strategy` pattern per kind of task: success and failure counts, the plan shapes that worked,
 * and provenance (the outcome events it came from). The row is locked while it is updated, so parallel
 * outcomes of the same kind all count.
 */
export async function handleTaskOutcome(
  deps: { db: Db; minSuccesses: number; onPattern?: (kind: string, status: string) => void },
  event: TaskOutcomeCloudEvent,
  context: { consumer: string; messageId: string; log: Log },
): Promise<void> {
  const data = event.data;
  const kind = data.kind ?? 'general';
  const outcome: Outcome = {
    eventId: event.id,
    eventType: event.type,
    taskId: data.taskId,
    kind,
    succeeded: data.status === 'completed',
    tools: data.tools ?? [],
    error: data.status === 'failed' ? { code: data.error.code, message: data.error.message } : null,
    at: event.time,
  };
  const scope = `kind:${kind}`;
  let status = 'candidate';
  await deps.db.prisma.$transaction(async (tx) => {
    if (!(await markProcessed(tx, context.consumer, context.messageId))) return;
    await tx.learningPattern.createMany({
      data: [
        {
          id: randomUUID(),
          type: 'strategy',
          scope,
          signature: SIGNATURE,
          content: strategyContent(kind, StrategyProvenance.parse({})),
          source: 'execution',
          provenance: StrategyProvenance.parse({}),
          status: 'candidate',
        },
      ],
      skipDuplicates: true,
    });
    const locked = await tx.$queryRaw<Array<{ id: string }>>`
      SELECT "id"::text AS "id" FROM "LearningPattern" WHERE "type" = 'strategy' AND "scope" = ${scope} AND "signature" = ${SIGNATURE} FOR UPDATE`;
    const id = locked[0]?.id;
    if (!id) throw new Error(`strategy pattern for ${scope} vanished`);
    const row = await tx.learningPattern.findUniqueOrThrow({ where: { id } });
    const previous = StrategyProvenance.safeParse(row.provenance);
    const provenance = applyOutcome(previous.success ? previous.data : StrategyProvenance.parse({}), outcome);
    const successCount = row.successCount + (outcome.succeeded ? 1 : 0);
    const failureCount = row.failureCount + (outcome.succeeded ? 0 : 1);
    status = successCount >= deps.minSuccesses ? 'active' : 'candidate';
    await tx.learningPattern.update({
      where: { id },
      data: {
        successCount,
        failureCount,
        confidence: confidence(successCount, failureCount),
        provenance,
        content: strategyContent(kind, provenance),
        status,
        version: { increment: 1 },
      },
    });
  });
  deps.onPattern?.(kind, status);
  context.log.info({ taskId: data.taskId, kind, succeeded: outcome.succeeded }, 'strategy pattern updated');
}
