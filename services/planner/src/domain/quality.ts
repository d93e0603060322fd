import { RiskClass } from '@tandem/contracts';

/** What a plan's quality score was computed from, stored beside the score so it can be checked later. */
export interface QualityFactors {
  /** 1 when the stored plan passed every check (always, for a stored plan); kept for the record. */
  structural: number;
  /** Model answers rejected before this plan (0 for a first-time valid plan). */
  rejections: number;
  /** Invalid tool calls over all rejected answers. */
  invalidCalls: number;
  stepCount: number;
  maxSteps: number;
  /** Steps per risk class. */
  riskMix: Record<RiskClass, number>;
  estimatedCostUsd: number;
  budgetUsd: number | null;
  /** Successes / (successes + failures) of the learned strategy used, or null without history. */
  strategySuccess: number | null;
}

const RISK_WEIGHT: Record<RiskClass, number> = {
  read: 0,
  compute: 0,
  write: 0.05,
  network: 0.1,
  destructive: 0.2,
};

/**
 * Plan quality at planning time (0..1). Each factor subtracts a bounded penalty; learned history, when
 * there is any, is blended in with weight 0.2. The outcome is stored later beside it (PlanMetrics), so
 * the weights can be fitted against real outcomes.
 */
export function planQuality(factors: QualityFactors): number {
  let score = factors.structural;
  score -= Math.min(0.6, 0.2 * factors.rejections);
  score -= Math.min(0.2, 0.05 * factors.invalidCalls);
  if (factors.stepCount > factors.maxSteps / 2) score -= 0.1;
  const riskPenalty = RiskClass.options.reduce(
    (sum, risk) => sum + RISK_WEIGHT[risk] * factors.riskMix[risk],
    0,
  );
  score -= Math.min(0.3, factors.stepCount === 0 ? 0 : riskPenalty / Math.sqrt(factors.stepCount));
  if (factors.budgetUsd !== null && factors.budgetUsd > 0) {
    const ratio = factors.estimatedCostUsd / factors.budgetUsd;
    if (ratio > 0.8) score -= 0.1;
  }
  score = Math.max(0, Math.min(1, score));
  if (factors.strategySuccess !== null) score = 0.8 * score + 0.2 * factors.strategySuccess;
  return Math.round(score * 1000) / 1000;
}

/** Counts steps per risk class. */
export function riskMixOf(risks: readonly RiskClass[]): Record<RiskClass, number> {
  const mix: Record<RiskClass, number> = { read: 0, compute: 0, write: 0, network: 0, destructive: 0 };
  for (const risk of risks) mix[risk] += 1;
  return mix;
}
