/** The sandbox execution core: runs untrusted code in a box and reports a typed result. No I/O frameworks. */
export { createBwrapBackend } from './bwrap-backend.js';
export type { BwrapBackendOptions } from './bwrap-backend.js';
export type {
  SandboxBackend,
  SandboxCheck,
  SandboxFile,
  SandboxJob,
  SandboxLanguage,
  SandboxLimits,
  SandboxOutcome,
  SandboxResult,
  SandboxRunOptions,
} from './types.js';
