import { createBwrapBackend, type SandboxBackend } from './sandbox/index.js';

/**
 * The backend every job runs on, for the service and for `pnpm sandbox run` alike (one place, so the
 * command checks exactly what the service runs).
 */
export function createConfiguredBackend(): SandboxBackend {
  return createBwrapBackend();
}
