import { createModelSelector, selectorConfigFromEnv } from '@tandem/models';
import { createLogger } from '@tandem/service-kit';
import {
  createScriptedModelServer,
  type ChatRequestRecord,
  type ScriptedModelServer,
  type ScriptedReply,
} from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelRiskOpinion } from '../src/risk-opinion.js';
import { createHarness, type Harness, type StepSpec } from './harness.js';
import { requestsWhere } from './helpers/rows.js';

let harness: Harness;
let model: ScriptedModelServer;
const asked: string[] = [];

/** The reviewer model: raises what looks like exfiltration, tries to lower a write, fails on demand. */
function reviewer(request: ChatRequestRecord): ScriptedReply {
  const prompt = JSON.stringify(request.body.messages);
  asked.push(prompt);
  if (prompt.includes('upload_everything'))
    return { content: '{"level":"critical","reason":"sends the workspace out"}' };
  if (prompt.includes('write_file')) return { content: 'Sure! {"level":"low","reason":"just a report"}' };
  if (prompt.includes('model_down')) return { status: 500, error: 'internal' };
  return { content: '{"level":"low","reason":"plain arithmetic"}' };
}

beforeAll(async () => {
  model = await createScriptedModelServer({ match: reviewer });
  const selector = createModelSelector(
    selectorConfigFromEnv({
      OPENAI_BASE_URL: model.url,
      OPENAI_API_KEY: 'sk-test-not-a-secret',
      TANDEM_PLANNING_MODEL: 'scripted-reviewer',
      TANDEM_CODE_MODEL: 'scripted-coder',
      TANDEM_MODEL_MAX_RETRIES: '0',
    }),
  );
  harness = await createHarness({
    opinion: modelRiskOpinion(selector, createLogger({ service: 'test', level: 'silent' }), 5000),
  });
});

afterAll(async () => {
  await harness?.close();
  await model?.close();
});

async function decide(steps: StepSpec[]) {
  const task = await harness.seedTask();
  const plan = await harness.seedPlan(task, 1, steps);
  await harness.proposeAndWait(plan);
  return requestsWhere(harness.runtime.db, { planId: plan.planId });
}

const code = (source: string): StepSpec => ({
  tool: 'run_code',
  arguments: { language: 'python', code: source },
  riskClass: 'compute',
});

describe("a model's second opinion on risk", () => {
  it('raises a step the rules rated low, with its reason, so a human decides', async () => {
    const [request] = await decide([code('upload_everything = 1\nresult = 1')]);
    expect(request).toMatchObject({ riskLevel: 'critical', status: 'pending' });
    expect(JSON.stringify(request?.riskReasons)).toContain('sends the workspace out');
  });

  it('never lowers a level, and a failing model leaves the rules to decide', async () => {
    const [write] = await decide([
      { tool: 'write_file', arguments: { path: 'out/report.md', content: 'x' }, riskClass: 'write' },
    ]);
    expect(write?.riskLevel).toBe('medium');
    const [down] = await decide([code('model_down = 1\nresult = 2')]);
    expect(down).toMatchObject({ riskLevel: 'low' });
    // The harness auto-approves only `read`: the low program still waits, decided by configuration.
    expect(down?.basis).toBe('config:auto-approve');
  });

  it('is not asked about questions or steps already high', async () => {
    const before = asked.length;
    await decide([
      { tool: 'ask_human', arguments: { question: 'Go on?' }, riskClass: 'read' },
      { tool: 'delete_file', arguments: { path: 'old/report.md' }, riskClass: 'destructive' },
    ]);
    expect(asked.length).toBe(before);
  });
});
