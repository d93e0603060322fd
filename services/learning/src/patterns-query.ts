import { LearningPatternsQuery, LearningPatternsReply } from '@tandem/contracts';
import { poolSql, type Db } from '@tandem/db';

/**
 * Answers "which patterns apply?": active patterns of the task's kind, or of the asked types in the asked
 * scope (code patterns and error recoveries for `run_code:<language>`), most confident first.
 */
export async function answerPatternsQuery(db: Db, raw: unknown): Promise<LearningPatternsReply> {
  const query = LearningPatternsQuery.parse(raw);
  // Plain SQL: the planner asks once per plan and the executor once per code step.
  const result = await poolSql(db).query(
    `SELECT "id"::text AS "id", "type", "scope", "content", "successCount", "failureCount", "confidence"
       FROM "LearningPattern"
      WHERE "status" = 'active' AND "scope" = $1 AND ($2::text[] IS NULL OR "type" = ANY($2::text[]))
      ORDER BY "confidence" DESC, "successCount" DESC LIMIT $3`,
    [query.scope ?? `kind:${query.kind}`, query.types ?? null, query.limit],
  );
  const rows = result.rows;
  return LearningPatternsReply.parse({
    patterns: rows.map((row) => ({
      id: row['id'],
      type: row['type'],
      scope: row['scope'],
      content: row['content'],
      successCount: row['successCount'],
      failureCount: row['failureCount'],
      confidence: row['confidence'],
    })),
  });
}
