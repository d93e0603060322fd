import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, type Harness } from './harness.js';
import { requestWhere, setTrust } from './helpers/rows.js';

const AGENT = 'report-bot';
const SOURCE = 'urn:acme:reports';

/** The agent's tasks come from one source; medium steps need earned trust. */
const POLICY = `
version: test-source-proof-1
defaults: { deadline: 1h, onExpiry: reject }
trust:
  low: { minScore: 0, minSuccesses: 0 }
  medium: { minScore: 0.5, minSuccesses: 3 }
agents:
  ${AGENT}: { sources: ['${SOURCE}'] }
`;

let harness: Harness;
let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'tandem-policy-'));
  const file = join(directory, 'policy.yaml');
  await writeFile(file, POLICY);
  harness = await createHarness({
    env: { TANDEM_APPROVAL_POLICY: file, TANDEM_AUTO_APPROVE: 'read,compute,write,network' },
  });
  await setTrust(harness.runtime.db, AGENT, 'write_file', { score: 0.9, successes: 50 });
});

afterAll(async () => {
  await harness?.close();
  await rm(directory, { recursive: true, force: true });
});

/** A one-step plan for the agent from a task as the planner stored it. */
async function propose(submittedBy: string | null) {
  const task = await harness.seedTask({ source: SOURCE, agentId: AGENT, submittedBy });
  const plan = await harness.seedPlan(
    task,
    1,
    [{ tool: 'write_file', arguments: { path: 'reports/q3.md', content: 'numbers' }, riskClass: 'write' }],
    { agentId: AGENT },
  );
  await harness.proposeAndWait(plan);
  return requestWhere(harness.runtime.db, { planId: plan.planId });
}

describe("a CloudEvent's source is used for trust only when it is proven (hole 5)", () => {
  it('an unsigned event that writes a listed source gets no trust: it counts as unverified', async () => {
    const request = await propose(null);
    expect(request).toMatchObject({ status: 'pending', trustAtDecision: null });
    expect(request.basis).toMatch(/agent:unverified/);
  });

  it('an event whose source signature the planner verified uses the agent trust', async () => {
    const request = await propose(`source:${SOURCE}`);
    expect(request).toMatchObject({ status: 'approved', mode: 'auto' });
    expect(request.basis).toMatch(/^trust:medium/);
  });
});
