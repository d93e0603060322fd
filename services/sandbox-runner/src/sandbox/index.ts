/** The sandbox execution core: runs untrusted code in a box and reports a typed result. No I/O frameworks. */
export { createBwrapBackend } from './bwrap-backend.js';
export type { BwrapBackendOptions } from './bwrap-backend.js';
/** The argv of one bubblewrap box (pure), for the tests that start boxes of their own. */
export { buildBwrapArgs } from './domain/bwrap-args.js';
export type { BwrapArgsParams } from './domain/bwrap-args.js';
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
