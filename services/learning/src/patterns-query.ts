import { LearningPatternsQuery, LearningPatternsReply } from '@tandem/contracts';
import type { Db } from '@tandem/db';

/**
 * Answers "which patterns apply?": active patterns of the task's kind, or of the asked types in the asked
 * scope (code patterns and error recoveries for `run_code:<language>`), most confident first.
 */
export async function answerPatternsQuery(db: Db, raw: unknown): Promise<LearningPatternsReply> {
  const query = LearningPatternsQuery.parse(raw);
  const rows = await db.prisma.learningPattern.findMany({
    where: {
      status: 'active',
      scope: query.scope ?? `kind:${query.kind}`,
      ...(query.types === undefined ? {} : { type: { in: query.types } }),
    },
    orderBy: [{ confidence: 'desc' }, { successCount: 'desc' }],
    take: query.limit,
  });
  return LearningPatternsReply.parse({
    patterns: rows.map((row) => ({
      id: row.id,
      type: row.type,
      scope: row.scope,
      content: row.content,
      successCount: row.successCount,
      failureCount: row.failureCount,
      confidence: row.confidence,
    })),
  });
}
