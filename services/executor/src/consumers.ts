import { consumersOf } from '@tandem/bus';
import type { ExecutorDeps } from './deps.js';

/** Declares one of the executor's consumers (`handlers/<subject>.ts`), checked against topology.ts. */
export const define = consumersOf<ExecutorDeps>('executor');
