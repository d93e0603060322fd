import type { JsonValue, PlannedStep, RiskReason } from '@tandem/contracts';
import { maxLevel, type RiskAssessment } from './risk.js';

/*
 * Rules on the VALUES a step's references resolved to (judged when the executor reached the step; the
 * rules in risk.ts see the resolved step too). A value that looks like a credential raises the step:
 *
 * | rule                     | level    | fires when                                                          |
 * |--------------------------|----------|---------------------------------------------------------------------|
 * | values.secret-to-network | critical | a resolved value looks like a credential and the step sends data out |
 * |                          |          | (any http_request, or a tool with an external side effect)           |
 * | values.secret            | high     | a resolved value looks like a credential (any other step)            |
 */

/** Credential shapes: private keys, cloud and vendor tokens, JWTs, `password=` style assignments. */
const SECRET_SHAPES: ReadonlyArray<readonly [RegExp, string]> = [
  [/-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/, 'a private key'],
  [/\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/, 'an AWS access key id'],
  [/\bgh[pousr]_[A-Za-z0-9]{30,}\b/, 'a GitHub token'],
  [/\bgithub_pat_[A-Za-z0-9_]{30,}\b/, 'a GitHub token'],
  [/\bsk-(?:proj-|live-|test-)?[A-Za-z0-9_-]{20,}/, 'an API secret key'],
  [/\bxox[abposr]-[A-Za-z0-9-]{10,}/, 'a Slack token'],
  [/\bAIza[0-9A-Za-z_-]{35}\b/, 'a Google API key'],
  [/\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/, 'a JSON web token'],
  [/\btdm_[A-Za-z0-9_-]{40,}/, 'a Tandem API token'],
  [
    /(?<![A-Za-z])(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token|client[_-]?secret)\s*["']?\s*[:=]\s*["']?[^\s"'&]{6,}/i,
    'a credential assignment',
  ],
];

/** What a string value looks like, if it looks like a credential. */
export function credentialShape(text: string): string | null {
  for (const [pattern, name] of SECRET_SHAPES) if (pattern.test(text)) return name;
  return null;
}

function strings(value: JsonValue, out: string[]): void {
  const stack: JsonValue[] = [value];
  while (stack.length > 0) {
    const current = stack.pop();
    if (typeof current === 'string') out.push(current);
    else if (Array.isArray(current)) stack.push(...current);
    else if (current !== null && typeof current === 'object') stack.push(...Object.values(current));
  }
}

/**
 * Raises an assessment of a resolved step by what its values carry. Only strings that a reference
 * filled in are looked at: literal text the plan already held was judged with the plan.
 */
export function raiseByValues(
  assessment: RiskAssessment,
  step: Pick<PlannedStep, 'tool' | 'sideEffects'>,
  template: Readonly<Record<string, JsonValue>>,
  resolved: Readonly<Record<string, JsonValue>>,
): RiskAssessment {
  const before: string[] = [];
  strings(template, before);
  const known = new Set(before);
  const after: string[] = [];
  strings(resolved, after);
  const filled = after.filter((text) => !known.has(text));
  let shape: string | null = null;
  for (const text of filled) {
    shape = credentialShape(text);
    if (shape !== null) break;
  }
  if (shape === null) return assessment;
  const sendsOut = step.tool === 'http_request' || step.sideEffects;
  const reason: RiskReason = sendsOut
    ? {
        rule: 'values.secret-to-network',
        level: 'critical',
        message: `a value from an earlier step looks like ${shape} and this step sends data out`,
      }
    : { rule: 'values.secret', level: 'high', message: `a value from an earlier step looks like ${shape}` };
  return {
    ...assessment,
    reasons: [...assessment.reasons, reason],
    level: maxLevel(assessment.level, reason.level),
    secretTouching: true,
  };
}
