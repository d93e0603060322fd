import { BaseConfig, ToolPolicyConfig } from '@tandem/service-kit';
import { parseSecrets } from '@tandem/webhooks';
import { z } from 'zod';

/**
 * `TANDEM_SOURCE_SECRETS`: a JSON object from CloudEvent source to its signing secrets (`whsec_...`, two
 * comma-separated while rotating), e.g. `{"urn:acme:billing":"whsec_..."}`. Problems name the source,
 * never a secret.
 */
const SourceSecrets = z
  .string()
  .optional()
  .transform((value, context): ReadonlyMap<string, readonly string[]> => {
    const secrets = new Map<string, readonly string[]>();
    if (value === undefined || value.trim() === '') return secrets;
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      context.addIssue({ code: 'custom', message: 'must be a JSON object of source -> secrets' });
      return secrets;
    }
    const entries = z.record(z.string().min(1).max(1000), z.string()).safeParse(parsed);
    if (!entries.success) {
      context.addIssue({ code: 'custom', message: 'must be a JSON object of source -> "whsec_..." strings' });
      return secrets;
    }
    for (const [source, list] of Object.entries(entries.data)) {
      try {
        secrets.set(source, parseSecrets(list));
      } catch (error) {
        const reason = error instanceof Error ? error.message : 'invalid';
        context.addIssue({ code: 'custom', message: `source ${JSON.stringify(source)}: ${reason}` });
      }
    }
    return secrets;
  });

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
  /**
   * The planning lease: a planner renews a task's row every third of it while it plans; a task whose
   * lease ran out (its planner stopped) is taken over by a planner's sweep.
   */
  TANDEM_PLANNING_LEASE_MS: z.coerce.number().int().min(500).max(3_600_000).default(60_000),
  /** How often the planner looks for stale planning to take over. */
  TANDEM_PLANNING_SWEEP_MS: z.coerce.number().int().min(50).max(600_000).default(1000),
  /** Signing secrets per CloudEvent source: events from these sources are proven (or refused). */
  TANDEM_SOURCE_SECRETS: SourceSecrets,
});
/** The planner's settings. */
export type PlannerConfig = z.infer<typeof PlannerConfig>;
