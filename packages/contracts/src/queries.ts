import { z } from 'zod';

/** Kinds of learned pattern. */
export const PatternType = z.enum(['strategy', 'prompt', 'tool_selection', 'code_pattern', 'error_recovery']);
/** Kinds of learned pattern. */
export type PatternType = z.infer<typeof PatternType>;

/**
 * Request on `<prefix>.query.learning-patterns` (core request/reply, may go unanswered). Without
 * `types`/`scope` it asks for the strategy patterns of a kind of task; with them, for patterns of those
 * types in that scope (e.g. `code_pattern` and `error_recovery` in scope `run_code:python`).
 */
export const LearningPatternsQuery = z.object({
  kind: z.string(),
  agentId: z.string().nullable().optional(),
  limit: z.number().int().min(1).max(20).default(5),
  types: z.array(PatternType).min(1).max(5).optional(),
  scope: z.string().min(1).max(200).optional(),
});
/** Request on `<prefix>.query.learning-patterns`. */
export type LearningPatternsQuery = z.infer<typeof LearningPatternsQuery>;

/** Reply: the active patterns that apply, best first. */
export const LearningPatternsReply = z.object({
  patterns: z.array(
    z.object({
      id: z.uuid(),
      type: PatternType,
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
