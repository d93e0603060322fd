import { describe, expect, it } from 'vitest';
import { loadPolicy } from '../src/policy-file.js';
import { SCENARIOS, SCENARIO_AGENTS, formatScenarioReport, runScenarios } from '../eval/scenarios.js';

const policy = loadPolicy(undefined).policy;
const run = runScenarios(policy);

describe('labelled approval scenarios under the default policy', () => {
  it('has at least 70 labelled steps across at least 4 agents with different histories', () => {
    expect(SCENARIOS.length).toBeGreaterThanOrEqual(70);
    const agents = new Set(SCENARIOS.map((scenario) => scenario.agent));
    expect(agents.size).toBeGreaterThanOrEqual(4);
    expect(Object.keys(SCENARIO_AGENTS)).toEqual(
      expect.arrayContaining(['newcomer', 'veteran', 'rejected-writer', 'limit-hitter']),
    );
    expect(SCENARIOS.some((scenario) => scenario.agent === 'veteran' && !scenario.verified)).toBe(true);
    expect(new Set(SCENARIOS.map((scenario) => scenario.id)).size).toBe(SCENARIOS.length);
  });

  it('covers both labels and every outcome', () => {
    const labels = new Set(SCENARIOS.map((scenario) => scenario.label));
    const outcomes = new Set(SCENARIOS.map((scenario) => scenario.expected));
    expect([...labels].sort()).toEqual(['benign', 'risky']);
    expect([...outcomes].sort()).toEqual(['auto-approved', 'needs-human', 'rejected']);
  });

  it.each(run.results.map((result) => [result.scenario.id, result.scenario.title, result] as const))(
    '%s: %s',
    (_id, _title, result) => {
      expect(result.decision.outcome).toBe(result.scenario.expected);
      if (result.scenario.expectedBasis !== undefined) {
        expect(result.decision.basis.startsWith(result.scenario.expectedBasis), result.decision.basis).toBe(
          true,
        );
      }
    },
  );

  it('auto-approves no risky step', () => {
    expect(run.totals.falseApprovals).toEqual([]);
    expect(run.totals.riskyAutoApproved).toBe(0);
  });

  it('auto-approves at least 80% of benign steps of agents with a track record in the class', () => {
    expect(run.totals.benignWithTrackRecord).toBeGreaterThanOrEqual(20);
    expect(run.totals.benignWithTrackRecordRate).toBeGreaterThanOrEqual(0.8);
  });

  it('prints a report', () => {
    const report = formatScenarioReport(run);
    console.log(report);
    expect(report).toMatch(/risky auto-approved \(false approvals\): 0\//);
    expect(report.split('\n').length).toBeGreaterThan(SCENARIOS.length);
  });
});
