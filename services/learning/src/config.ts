import { BaseConfig } from '@tandem/service-kit';
import { z } from 'zod';

/** The learning service's settings (environment variables). */
export const LearningConfig = BaseConfig.extend({
  TANDEM_LEARNING_PORT: z.coerce.number().int().min(0).max(65535).default(7105),
  /** Successes a strategy needs before it is answered to the planner. */
  TANDEM_LEARNING_MIN_SUCCESSES: z.coerce.number().int().min(1).max(1000).default(1),
});
/** The learning service's settings. */
export type LearningConfig = z.infer<typeof LearningConfig>;
