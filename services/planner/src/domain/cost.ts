import type { ValidatedStep } from './planning.js';

/** Tokens a code-generation call typically takes (prompt with context, and the program). */
export const CODE_CALL_ESTIMATE = { promptTokens: 1500, completionTokens: 600 };

/**
 * The model cost a step is expected to add when it runs: a `run_code` with a `spec` makes one code-model
 * call (fixes are not counted: they only happen after a failure); every other tool costs no model call.
 */
export function estimateStepCostUsd(
  step: Pick<ValidatedStep, 'tool' | 'arguments'>,
  prices: { inputUsdPerMTok: number; outputUsdPerMTok: number } | undefined,
): number {
  if (prices === undefined || step.tool.name !== 'run_code' || typeof step.arguments['spec'] !== 'string')
    return 0;
  return (
    (CODE_CALL_ESTIMATE.promptTokens * prices.inputUsdPerMTok +
      CODE_CALL_ESTIMATE.completionTokens * prices.outputUsdPerMTok) /
    1_000_000
  );
}
