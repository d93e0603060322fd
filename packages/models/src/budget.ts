import { ErrorCodes, TandemError, TaskBudget } from '@tandem/contracts';

// The budget is part of the public task request, so its schema lives in contracts; re-exported here.
export { TaskBudget };

/** What a task has used so far (the caller sums its stored call records). */
export interface BudgetSpent {
  tokens: number;
  costUsd: number;
  calls: number;
}

/** Which limit of a `TaskBudget` was reached. */
export type BudgetLimit = 'tokens' | 'costUsd' | 'calls';

/** Nothing spent yet. */
export const NOTHING_SPENT: Readonly<BudgetSpent> = Object.freeze({ tokens: 0, costUsd: 0, calls: 0 });

/**
 * A task reached one of its budget limits: the task stops (a permanent failure, not retryable),
 * no further model call is made for it. A `TandemError` with code `BUDGET.EXCEEDED` (a wire name: it
 * travels on the bus and in stored rows).
 */
export class BudgetExceededError extends TandemError {
  override readonly name = 'BudgetExceededError';
  override readonly code = ErrorCodes.BUDGET_EXCEEDED;
  override readonly retryable = false;
  override readonly details: { limit: BudgetLimit; max: number; spent: number };

  constructor(details: { limit: BudgetLimit; max: number; spent: number }) {
    super(ErrorCodes.BUDGET_EXCEEDED, `task budget exceeded: ${describeLimit(details)}`, {
      retryable: false,
      details,
    });
    this.details = details;
  }

  /** The cross-process shape `{ code, message, retryable, details }` (the same as `toShape()`). */
  toJSON(): {
    code: typeof ErrorCodes.BUDGET_EXCEEDED;
    message: string;
    retryable: false;
    details: { limit: BudgetLimit; max: number; spent: number };
  } {
    return {
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      details: { ...this.details },
    };
  }
}

// Cost sums of floats may land a hair below the limit they reached.
const COST_EPSILON_USD = 1e-12;

/** Throws `BudgetExceededError` when `spent` has reached any limit of `budget` (checked: calls, tokens, cost). */
export function checkBudget(budget: TaskBudget | undefined, spent: BudgetSpent): void {
  if (budget === undefined) return;
  if (budget.maxModelCalls !== undefined && spent.calls >= budget.maxModelCalls) {
    throw new BudgetExceededError({ limit: 'calls', max: budget.maxModelCalls, spent: spent.calls });
  }
  if (budget.maxTokens !== undefined && spent.tokens >= budget.maxTokens) {
    throw new BudgetExceededError({ limit: 'tokens', max: budget.maxTokens, spent: spent.tokens });
  }
  if (budget.maxCostUsd !== undefined && spent.costUsd >= budget.maxCostUsd - COST_EPSILON_USD) {
    throw new BudgetExceededError({ limit: 'costUsd', max: budget.maxCostUsd, spent: spent.costUsd });
  }
}

/** USD of one call: tokens times the per-million-token prices. */
export function callCostUsd(
  prices: { inputUsdPerMTok: number; outputUsdPerMTok: number },
  usage: { promptTokens: number; completionTokens: number },
): number {
  return (
    (usage.promptTokens * prices.inputUsdPerMTok + usage.completionTokens * prices.outputUsdPerMTok) / 1e6
  );
}

function describeLimit(details: { limit: BudgetLimit; max: number; spent: number }): string {
  if (details.limit === 'calls') return `${details.spent} of ${details.max} model calls made`;
  if (details.limit === 'tokens') return `${details.spent} of ${details.max} tokens used`;
  return `$${round(details.spent)} of $${round(details.max)} spent`;
}

function round(usd: number): string {
  return String(Math.round(usd * 1e6) / 1e6);
}
