import { expect } from 'vitest';
import type { ScenarioResult } from '../src/index.js';

/** The suite's only assertion: correctness after quiescence, every failure named (timings are not asserted). */
export function expectCorrect(result: ScenarioResult): void {
  expect(result.figures.accepted, 'tasks accepted').toBeGreaterThan(0);
  expect(result.failures, `${result.scenario}: ${result.failures.length} failures`).toEqual([]);
}
