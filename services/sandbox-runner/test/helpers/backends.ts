import { createBwrapBackend, type SandboxBackend } from '../../src/sandbox/index.js';

/**
 * Backends a test file made. Each is drained (its finished jobs torn down) before the checks after a test,
 * and closed (warm boxes and the engine copy removed) after the file.
 */
export function backendTracker(): {
  trackedBackend(options?: Parameters<typeof createBwrapBackend>[0]): SandboxBackend;
  drainBackends(): Promise<void>;
  closeBackends(): Promise<void>;
} {
  const made: SandboxBackend[] = [];
  return {
    trackedBackend(options) {
      const backend = createBwrapBackend(options);
      made.push(backend);
      return backend;
    },
    async drainBackends() {
      await Promise.all(made.map((backend) => backend.drain()));
    },
    async closeBackends() {
      await Promise.all(made.map((backend) => backend.close()));
    },
  };
}
