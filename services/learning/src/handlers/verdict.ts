import { randomUUID } from 'node:crypto';
import type { ApprovalVerdictRecorded, Envelope, EventData } from '@tandem/contracts';
import { UTC_NOW as NOW, markProcessedSql, sqlTransaction, type Db, toJsonText } from '@tandem/db';
import type { Log } from '@tandem/service-kit';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const LEARNING_VERDICT_CONSUMER = 'learning-approval-verdict';

/**
 * Stores a human verdict (approval, rejection, edit, answer, expiry, revert) as a `Feedback` row of kind
 * `verdict`, with the step, its risk and trust at the time and the patterns that shaped its plan. Turning
 * verdicts into patterns is later work; the row keeps everything it will need. Idempotent twice over: the
 * inbox row and `Feedback`'s unique (sourceEventId, kind).
 */
export async function handleVerdict(
  deps: { db: Db; onStored?: (verdict: string) => void },
  envelope: Envelope<EventData<typeof ApprovalVerdictRecorded>>,
  context: { messageId: string; log: Log },
): Promise<void> {
  const verdict = envelope.data;
  const stored = await sqlTransaction(deps.db, async (sql) => {
    if (!(await markProcessedSql(sql, LEARNING_VERDICT_CONSUMER, context.messageId))) return false;
    const inserted = await sql.query(
      `INSERT INTO "Feedback" ("id", "taskId", "stepId", "approvalId", "kind", "verdict", "comment", "data",
                               "sourceEventId", "createdAt")
       VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, 'verdict', $5, $6, $7::jsonb, $8, ${NOW})
       ON CONFLICT ("sourceEventId", "kind") DO NOTHING`,
      [
        randomUUID(),
        verdict.taskId,
        verdict.stepId,
        verdict.approvalId,
        verdict.verdict,
        verdict.reason,
        toJsonText({
          agentId: verdict.agentId,
          planId: verdict.planId,
          tool: verdict.tool,
          actionClass: verdict.actionClass,
          decidedBy: verdict.decidedBy,
          mode: verdict.mode,
          arguments: verdict.arguments,
          editedArguments: verdict.editedArguments,
          answer: verdict.answer,
          riskLevel: verdict.riskLevel,
          riskReasons: verdict.riskReasons,
          trustAtDecision: verdict.trustAtDecision,
          patternIds: verdict.patternIds,
          occurredAt: envelope.occurredAt,
        }),
        envelope.id,
      ],
    );
    return (inserted.rowCount ?? 0) > 0;
  });
  if (stored) deps.onStored?.(verdict.verdict);
  context.log.info(
    { taskId: verdict.taskId, stepId: verdict.stepId, verdict: verdict.verdict, stored },
    stored ? 'verdict stored' : 'verdict already stored',
  );
}
