import { z } from 'zod';
import type { SandboxLimits } from './sandbox/index.js';

/**
 * The operator's ceilings (environment variables), shared by the service and the `pnpm sandbox run`
 * command so both run a job under exactly the same limits. Needs no database or NATS settings.
 */
export const SandboxCeilingsConfig = z.object({
  /** Operator ceilings: a job asking for more is clamped to these. */
  TANDEM_SANDBOX_MAX_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(60_000),
  TANDEM_SANDBOX_MAX_OUTPUT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(16 * 1024 * 1024)
    .default(4 * 1024 * 1024),
  TANDEM_SANDBOX_MAX_MEMORY_MB: z.coerce.number().int().min(16).max(16_384).default(1024),
});
/** The operator's ceilings. */
export type SandboxCeilingsConfig = z.infer<typeof SandboxCeilingsConfig>;

/** Limits as a job asks for them (the bus event's `limits`, or the command's flags). */
export interface RequestedLimits {
  timeoutMs: number;
  maxOutputBytes: number;
  memoryMb?: number | undefined;
}

/** A job's limits clamped to the operator's ceilings. */
export function clampLimits(requested: RequestedLimits, ceilings: SandboxCeilingsConfig): SandboxLimits {
  const memoryMb = Math.min(
    requested.memoryMb ?? ceilings.TANDEM_SANDBOX_MAX_MEMORY_MB,
    ceilings.TANDEM_SANDBOX_MAX_MEMORY_MB,
  );
  return {
    timeoutMs: Math.min(requested.timeoutMs, ceilings.TANDEM_SANDBOX_MAX_TIMEOUT_MS),
    maxOutputBytes: Math.min(requested.maxOutputBytes, ceilings.TANDEM_SANDBOX_MAX_OUTPUT_BYTES),
    memoryMb,
  };
}
