import { LearningPatternsQuery, LearningPatternsReply } from '@tandem/contracts';
import type { Db } from '@tandem/db';

/** Answers "which patterns apply to this task?": active patterns of the task's kind, most confident first. */
export async function answerPatternsQuery(db: Db, raw: unknown): Promise<LearningPatternsReply> {
  const query = LearningPatternsQuery.parse(raw);
  const rows = await db.prisma.learningPattern.findMany({
    where: { status: 'active', scope: { in: [`kind:${query.kind}`] } },
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
