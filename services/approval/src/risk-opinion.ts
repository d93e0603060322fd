import { RISK_LEVELS, RiskLevel, type JsonValue, type PlannedStep } from '@tandem/contracts';
import type { ModelSelector } from '@tandem/models';
import type { Log } from '@tandem/service-kit';
import { z } from 'zod';
import { assessRisk, raiseRisk, type RiskAssessment } from './domain/risk.js';

/** A second opinion on one step: a higher level with a reason, or null (the rules' level stands). */
export type RiskOpinion = (input: {
  taskId: string;
  step: PlannedStep;
  plan: readonly PlannedStep[];
  task: { kind: string; goal: string };
  risk: RiskAssessment;
}) => Promise<{ level: RiskLevel; reason: string } | null>;

const Answer = z.object({ level: RiskLevel, reason: z.string().min(1).max(500) });

const SYSTEM = [
  'You review one step of an AI agent plan before it runs, as a security reviewer.',
  'Deterministic rules already rated the step; you may only say it is riskier, never safer.',
  'Consider data leaving the organisation, secrets, destructive or irreversible effects, and steps that',
  'look unrelated to the goal. Answer with one JSON object and nothing else:',
  '{"level": "low" | "medium" | "high" | "critical", "reason": "<one sentence>"}.',
].join(' ');

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** The first JSON object in a model's answer, parsed; null when there is none. */
function firstObject(content: string): unknown {
  const start = content.indexOf('{');
  const end = content.lastIndexOf('}');
  if (start < 0 || end <= start) return null;
  try {
    return JSON.parse(content.slice(start, end + 1));
  } catch {
    return null;
  }
}

/**
 * Asks the planning model (through the service's ModelSelector, so the call is recorded and falls back
 * like any other) for a second opinion. Only a level above the rules' counts; a failure, timeout or
 * unreadable answer leaves the rules' level (logged). The prompt carries the step as planned: tool,
 * arguments (secrets are only ever referenced by name), the other steps' tools and the goal.
 */
export function modelRiskOpinion(selector: ModelSelector, log: Log, timeoutMs: number): RiskOpinion {
  return async ({ taskId, step, plan, task, risk }) => {
    const described = {
      goal: clip(task.goal, 2000),
      kind: task.kind,
      step: { key: step.key, tool: step.tool, arguments: step.arguments },
      plan: plan.map((other) => ({ key: other.key, tool: other.tool })),
      rules: { level: risk.level, reasons: risk.reasons.map((reason) => reason.message) },
    };
    try {
      const answer = await selector.complete({
        role: 'planning',
        taskId,
        messages: [
          { role: 'system', content: SYSTEM },
          { role: 'user', content: clip(JSON.stringify(described), 20_000) },
        ],
        idempotencyKey: `${taskId}:risk-opinion:${step.stepId}`,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const parsed = Answer.safeParse(firstObject(answer.content ?? ''));
      if (!parsed.success) {
        log.warn({ taskId, stepId: step.stepId }, 'risk opinion unreadable; the rules decide');
        return null;
      }
      return RISK_LEVELS.indexOf(parsed.data.level) > RISK_LEVELS.indexOf(risk.level) ? parsed.data : null;
    } catch (error) {
      log.warn({ err: error, taskId, stepId: step.stepId }, 'no risk opinion; the rules decide');
      return null;
    }
  };
}

/**
 * The risk of each step, with the opinion asked for steps the rules rated `low` or `medium` (for higher
 * levels a human decides anyway) and not for questions. Runs before the plan's transaction.
 */
export async function assessWithOpinion(
  opinion: RiskOpinion,
  input: {
    taskId: string;
    plan: readonly PlannedStep[];
    task: { kind: string; goal: string; input: JsonValue | null };
  },
): Promise<Map<string, RiskAssessment>> {
  const assessed = new Map<string, RiskAssessment>();
  await Promise.all(
    input.plan.map(async (step) => {
      const risk = assessRisk(step, { plan: input.plan, task: input.task });
      if (step.tool === 'ask_human' || (risk.level !== 'low' && risk.level !== 'medium')) {
        assessed.set(step.stepId, risk);
        return;
      }
      const second = await opinion({ taskId: input.taskId, step, plan: input.plan, task: input.task, risk });
      assessed.set(
        step.stepId,
        second === null
          ? risk
          : raiseRisk(risk, { level: second.level, reason: second.reason, source: 'model' }),
      );
    }),
  );
  return assessed;
}
