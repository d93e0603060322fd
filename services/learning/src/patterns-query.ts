import { LearningPatternsQuery, LearningPatternsReply } from '@tandem/contracts';
import { activePatterns, type Db } from '@tandem/db';

/**
 * Answers "which patterns apply?": active patterns of the task's kind, or of the asked types in the asked
 * scope (code patterns and error recoveries for `run_code:<language>`), most confident first.
 */
export async function answerPatternsQuery(db: Db, raw: unknown): Promise<LearningPatternsReply> {
  const query = LearningPatternsQuery.parse(raw);
  const patterns = await activePatterns(db, {
    scope: query.scope ?? `kind:${query.kind}`,
    types: query.types ?? null,
    limit: query.limit,
  });
  return LearningPatternsReply.parse({ patterns });
}
