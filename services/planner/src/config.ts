import { BaseConfig, ToolPolicyConfig } from '@tandem/service-kit';
import { z } from 'zod';

/** The planner's settings (environment variables). */
export const PlannerConfig = BaseConfig.extend(ToolPolicyConfig.shape).extend({
  TANDEM_PLANNER_PORT: z.coerce.number().int().min(0).max(65535).default(7101),
  /** How many times a rejected plan goes back to the planning model before the task fails. */
  TANDEM_PLANNER_MAX_REPAIRS: z.coerce.number().int().min(0).max(10).default(2),
  TANDEM_PLANNER_MAX_STEPS: z.coerce.number().int().min(1).max(200).default(20),
  /** How long planning waits for learned patterns before planning without them. */
  TANDEM_LEARNING_QUERY_TIMEOUT_MS: z.coerce.number().int().min(10).max(10_000).default(300),
  /** How long a non-empty answer of the learning service is reused for the same kind of task (0: never). */
  TANDEM_LEARNING_CACHE_MS: z.coerce.number().int().min(0).max(600_000).default(1000),
  TANDEM_PLANNER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  TANDEM_MAX_DELIVER: z.coerce.number().int().min(2).max(100).default(5),
});
/** The planner's settings. */
export type PlannerConfig = z.infer<typeof PlannerConfig>;
