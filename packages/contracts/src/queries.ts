import { z } from 'zod';

/** Request on `<prefix>.query.learning-patterns` (core request/reply, may go unanswered). */
export const LearningPatternsQuery = z.object({
  kind: z.string(),
  agentId: z.string().nullable().optional(),
  limit: z.number().int().min(1).max(20).default(5),
});
/** Request on `<prefix>.query.learning-patterns`. */
export type LearningPatternsQuery = z.infer<typeof LearningPatternsQuery>;

/** Reply: the active patterns that apply, best first. */
export const LearningPatternsReply = z.object({
  patterns: z.array(
    z.object({
      id: z.uuid(),
      type: z.enum(['strategy', 'prompt', 'tool_selection', 'code_pattern', 'error_recovery']),
      scope: z.string(),
      content: z.string(),
      successCount: z.number().int(),
      failureCount: z.number().int(),
      confidence: z.number(),
    }),
  ),
});
/** Reply: the active patterns that apply, best first. */
export type LearningPatternsReply = z.infer<typeof LearningPatternsReply>;
