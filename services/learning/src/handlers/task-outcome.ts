import { randomUUID } from 'node:crypto';
import type { TaskOutcomeCloudEvent } from '@tandem/contracts';
import { UTC_NOW as NOW, markProcessedSql, sqlTransaction, type Db, toJsonText } from '@tandem/db';
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
  await sqlTransaction(deps.db, async (sql) => {
    if (!(await markProcessedSql(sql, context.consumer, context.messageId))) return;
    const empty = StrategyProvenance.parse({});
    await sql.query(
      `INSERT INTO "LearningPattern" ("id", "type", "scope", "signature", "content", "source", "provenance", "status",
                                      "createdAt", "updatedAt")
       VALUES ($1::uuid, 'strategy', $2, $3, $4, 'execution', $5::jsonb, 'candidate', ${NOW}, ${NOW})
       ON CONFLICT ("type", "scope", "signature") DO NOTHING`,
      [randomUUID(), scope, SIGNATURE, strategyContent(kind, empty), toJsonText(empty)],
    );
    // The row is locked while it is updated, so parallel outcomes of the same kind all count.
    const locked = await sql.query(
      `SELECT "id"::text AS "id", "successCount", "failureCount", "provenance" FROM "LearningPattern"
        WHERE "type" = 'strategy' AND "scope" = $1 AND "signature" = $2 FOR UPDATE`,
      [scope, SIGNATURE],
    );
    const row = locked.rows[0];
    const id = row?.['id'];
    const before = { ok: row?.['successCount'], failed: row?.['failureCount'] };
    if (typeof id !== 'string' || typeof before.ok !== 'number' || typeof before.failed !== 'number')
      throw new Error(`strategy pattern for ${scope} vanished`);
    const previous = StrategyProvenance.safeParse(row?.['provenance']);
    const provenance = applyOutcome(previous.success ? previous.data : empty, outcome);
    const successCount = before.ok + (outcome.succeeded ? 1 : 0);
    const failureCount = before.failed + (outcome.succeeded ? 0 : 1);
    status = successCount >= deps.minSuccesses ? 'active' : 'candidate';
    await sql.query(
      `UPDATE "LearningPattern" SET "successCount" = $2, "failureCount" = $3, "confidence" = $4, "provenance" = $5::jsonb,
              "content" = $6, "status" = $7, "version" = "version" + 1, "updatedAt" = ${NOW}
        WHERE "id" = $1::uuid`,
      [
        id,
        successCount,
        failureCount,
        confidence(successCount, failureCount),
        toJsonText(provenance),
        strategyContent(kind, provenance),
        status,
      ],
    );
  });
  deps.onPattern?.(kind, status);
  context.log.info({ taskId: data.taskId, kind, succeeded: outcome.succeeded }, 'strategy pattern updated');
}
