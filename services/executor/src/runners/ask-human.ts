import type { InlineRunner } from './types.js';

/** `ask_human`: the approval service's answer was stored on the step when it was approved: `{ answer }`. */
export const askHumanRunner: InlineRunner = {
  tool: 'ask_human',
  run: async (_context, step) => step.result?.value ?? null,
};
