import { BaseConfig, ToolPolicyConfig } from '@tandem/service-kit';
import { z } from 'zod';

/** The executor's settings (environment variables). */
export const ExecutorConfig = BaseConfig.extend(ToolPolicyConfig.shape).extend({
  TANDEM_EXECUTOR_PORT: z.coerce.number().int().min(0).max(65535).default(7103),
  /** Limits the executor asks for per code step (the sandbox-runner clamps them to its own ceilings). */
  TANDEM_STEP_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  TANDEM_STEP_MAX_OUTPUT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(16 * 1024 * 1024)
    .default(1024 * 1024),
  TANDEM_STEP_MEMORY_MB: z.coerce.number().int().min(16).max(16_384).default(256),
  TANDEM_EXECUTOR_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  /** Fixes the code model may make to a failing `run_code` program (sandbox runs = 1 + this). */
  TANDEM_CODE_FIX_ATTEMPTS: z.coerce.number().int().min(0).max(10).default(2),
  /** New plans asked for after a step failed for good. */
  TANDEM_MAX_REPLANS: z.coerce.number().int().min(0).max(3).default(1),
  TANDEM_WORKSPACE_MAX_FILE_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024),
  TANDEM_WORKSPACE_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .max(1024 * 1024 * 1024)
    .default(16 * 1024 * 1024),
  TANDEM_WORKSPACE_MAX_FILES: z.coerce.number().int().min(1).max(100_000).default(500),
  /** How often the sweeps run: deadlines, early cancels, stale steps, stuck tasks, stale re-planning. */
  TANDEM_DEADLINE_SWEEP_MS: z.coerce.number().int().min(50).max(600_000).default(1000),
  /**
   * The step lease: a step whose replica stopped is taken over after this long without a renewal
   * (`run_code` and `http_request` add their job's or request's own time limit).
   */
  TANDEM_STEP_LEASE_MS: z.coerce.number().int().min(200).max(3_600_000).default(30_000),
  /** How often a lost sandbox job is requested again (same idempotency key) before its step fails. */
  TANDEM_STEP_LEASE_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
  /** A task quiet for this long with nothing left to move it on fails TASK.STUCK. */
  TANDEM_STUCK_AFTER_MS: z.coerce.number().int().min(500).max(86_400_000).default(120_000),
  /** A re-plan not answered (and not renewed by the planner) for this long is asked for again. */
  TANDEM_PLANNING_LEASE_MS: z.coerce.number().int().min(500).max(3_600_000).default(60_000),
  /** How long a cancel request for a task not stored yet is kept (it may overtake its task.requested). */
  TANDEM_EARLY_CANCEL_TTL_MS: z.coerce.number().int().min(1000).max(86_400_000).default(600_000),
  /** How often dead letters of task messages are turned into task failures. */
  TANDEM_DEAD_LETTER_SWEEP_MS: z.coerce.number().int().min(50).max(600_000).default(1000),
  TANDEM_HTTP_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(10_000),
  TANDEM_HTTP_MAX_RESPONSE_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024),
  TANDEM_LEARNING_QUERY_TIMEOUT_MS: z.coerce.number().int().min(10).max(10_000).default(300),
});
/** The executor's settings. */
export type ExecutorConfig = z.infer<typeof ExecutorConfig>;
