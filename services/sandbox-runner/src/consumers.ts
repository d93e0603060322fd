import { consumersOf } from '@tandem/bus';
import type { RunRequestedDeps } from './handlers/sandbox-run-requested.js';

/** Declares the sandbox-runner's consumers (one per file in handlers/), checked against topology.ts. */
export const define = consumersOf<RunRequestedDeps>('sandbox-runner');
