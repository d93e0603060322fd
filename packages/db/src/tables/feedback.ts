import type { Verdict } from '@tandem/contracts';
import { json } from '../column-types.js';
import type { Tx } from '../transaction.js';
import { utcNow } from './planner-common.js';

// The only module that writes "Feedback" (writer: learning). One row per (source event, kind).

/** A human verdict to keep as feedback. */
export interface NewVerdictFeedback {
  id: string;
  taskId: string;
  stepId: string;
  approvalId: string;
  verdict: Verdict;
  comment: string | null;
  /** Everything later learning needs about the decision (agent, plan, tool, risk, trust, patterns...). */
  data: Record<string, unknown>;
  /** The event the verdict came from: a second row for it is not inserted. */
  sourceEventId: string;
}

/** Inserts a verdict row unless one exists for its event; true when it was inserted. */
export async function insertVerdictFeedback(tx: Tx, feedback: NewVerdictFeedback): Promise<boolean> {
  const result = await tx
    .insertInto('Feedback')
    .values({
      id: feedback.id,
      taskId: feedback.taskId,
      stepId: feedback.stepId,
      approvalId: feedback.approvalId,
      kind: 'verdict',
      verdict: feedback.verdict,
      comment: feedback.comment,
      data: json(feedback.data),
      sourceEventId: feedback.sourceEventId,
      createdAt: utcNow(),
    })
    .onConflict((conflict) => conflict.columns(['sourceEventId', 'kind']).doNothing())
    .executeTakeFirst();
  return result.numInsertedOrUpdatedRows === 1n;
}
