import { z } from 'zod';
import { resolvedArguments } from '../domain/advance.js';
import type { InlineRunner } from './types.js';

const RespondArguments = z.object({ answer: z.string() });

/** `respond`: the step's value is its (resolved) answer. */
export const respondRunner: InlineRunner = {
  tool: 'respond',
  run: async ({ state }, step) => RespondArguments.parse(resolvedArguments(state.steps, step)).answer,
};
