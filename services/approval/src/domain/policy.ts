import { createHash } from 'node:crypto';
import { RiskLevel } from '@tandem/contracts';
import { parseDocument } from 'yaml';
import { z } from 'zod';

/*
 * The approval policy: a versioned YAML (or JSON) file an operator writes and a reviewer can read.
 * policy/example.yaml documents every field. Objects are strict (a misspelt key is an error, not
 * silently ignored), regular expressions must compile, and every problem is reported with its path.
 * Durations ('30s', '15m', '1h', '2d', '1h30m' or an integer of milliseconds) are milliseconds once
 * parsed.
 */

/** A policy file that cannot be read or is not a valid policy; the message names every problem. */
export class PolicyError extends Error {
  /** One line per problem, each starting with where it is (`rules[0].arguments.path: ...`). */
  readonly problems: readonly string[];

  constructor(message: string, problems: readonly string[] = [], options?: { cause?: unknown }) {
    super(
      problems.length > 0 ? `${message}\n${problems.map((problem) => `  - ${problem}`).join('\n')}` : message,
      options,
    );
    this.name = 'PolicyError';
    this.problems = problems;
  }
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * Milliseconds of a duration: a non-negative integer of milliseconds, or text such as '30s', '15m',
 * '1h', '2d', '1h30m', '500ms' ('0' is zero). Throws a PolicyError otherwise.
 */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value >= 0) return value;
    throw new PolicyError(
      `${value} is not a duration: give a whole number of milliseconds or text such as '15m'`,
    );
  }
  const text = value.trim();
  if (/^\d+$/.test(text)) return parseDuration(Number(text));
  if (!/^(\d+(ms|s|m|h|d))+$/.test(text)) {
    throw new PolicyError(
      `${JSON.stringify(value)} is not a duration: use a number with a unit, e.g. '30s', '15m', '1h', '2d' or '1h30m'`,
    );
  }
  let total = 0;
  for (const match of text.matchAll(/(\d+)(ms|s|m|h|d)/g)) {
    total += Number(match[1]) * (DURATION_UNITS[match[2] ?? ''] ?? Number.NaN);
  }
  if (!Number.isSafeInteger(total)) throw new PolicyError(`${JSON.stringify(value)} is too long a duration`);
  return total;
}

const MAX_DURATION_MS = 30 * 86_400_000;

function duration(min: number, max: number) {
  return z.union([z.string(), z.number()]).transform((value, context) => {
    let ms: number;
    try {
      ms = parseDuration(value);
    } catch (error) {
      context.addIssue({ code: 'custom', message: error instanceof Error ? error.message : String(error) });
      return z.NEVER;
    }
    if (ms < min || ms > max) {
      context.addIssue({
        code: 'custom',
        message: `${JSON.stringify(value)} is out of range: between ${min / 1000}s and ${max / 86_400_000}d`,
      });
      return z.NEVER;
    }
    return ms;
  });
}

const Deadline = duration(1000, MAX_DURATION_MS);
const Reminder = duration(0, MAX_DURATION_MS);

/** A pending request's fate at its deadline. */
export const OnExpiry = z.enum(['reject', 'escalate']);
/** A pending request's fate at its deadline. */
export type OnExpiry = z.infer<typeof OnExpiry>;

const GroupName = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,100}$/, 'a group name: 1-100 letters, digits, _ . or -');
const Name = z.string().trim().min(1).max(200);

/** Compiles a rule's argument pattern; regular expressions are compiled once and reused. */
const compiled = new Map<string, RegExp>();
export function compilePattern(source: string): RegExp {
  let pattern = compiled.get(source);
  if (pattern === undefined) {
    pattern = new RegExp(source);
    compiled.set(source, pattern);
  }
  return pattern;
}

const Pattern = z
  .string()
  .min(1)
  .max(1000)
  .superRefine((source, context) => {
    try {
      compilePattern(source);
    } catch (error) {
      context.addIssue({
        code: 'custom',
        message: `not a valid regular expression (${error instanceof Error ? error.message : String(error)})`,
      });
    }
  });

const ArgumentPath = z
  .string()
  .regex(/^[^.\s]+(\.[^.\s]+)*$/, 'an argument path such as `path` or `headers.0.name`');

/** When a level may be approved by earned trust. */
export const TrustThreshold = z.strictObject({
  /** Lowest effective score; at least 0, so a class with a recent rejection (score < 0) never passes. */
  minScore: z.number().min(0).max(1),
  /** Fewest verified successes. */
  minSuccesses: z.number().int().min(0).max(1_000_000),
});
/** When a level may be approved by earned trust. */
export type TrustThreshold = z.infer<typeof TrustThreshold>;

const NEVER_BY_TRUST =
  'high and critical steps are never approved by trust alone: remove this level (an allow rule can approve specific steps)';

const Trust = z.strictObject({
  low: TrustThreshold.optional(),
  medium: TrustThreshold.optional(),
  high: z.never({ error: NEVER_BY_TRUST }).optional(),
  critical: z.never({ error: NEVER_BY_TRUST }).optional(),
});

/** One policy rule: filters (all given must match) and an effect. */
export const PolicyRule = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'a rule id: 1-100 letters, digits, _ . : or -'),
  effect: z.enum(['allow', 'ask', 'deny']),
  agents: z.array(Name).min(1).optional(),
  tools: z.array(Name).min(1).optional(),
  actionClasses: z.array(Name).min(1).optional(),
  riskLevels: z.array(RiskLevel).min(1).optional(),
  /** Argument (dot path) -> regular expression, anchored only as written. */
  arguments: z.record(ArgumentPath, Pattern).optional(),
  reason: z.string().trim().min(1).max(2000).optional(),
  deadline: Deadline.optional(),
  onExpiry: OnExpiry.optional(),
  group: GroupName.optional(),
});
/** One policy rule. */
export type PolicyRule = z.output<typeof PolicyRule>;

const Defaults = z.strictObject({
  deadline: Deadline.default(3_600_000),
  onExpiry: OnExpiry.default('reject'),
  reminderBefore: Reminder.default(0),
  group: GroupName.optional(),
});

const Escalation = z.strictObject({
  group: GroupName,
  deadline: Deadline.default(3_600_000),
});

const AgentEntry = z.strictObject({
  sources: z.array(z.string().trim().min(1).max(500)).min(1),
});

const Webhook = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, 'a webhook name: 1-100 letters, digits, _ . or -'),
  url: z.url({ protocol: /^https?$/, error: 'an http(s) URL' }),
  /** Groups whose requests go to this endpoint; absent: every group. */
  groups: z.array(GroupName).min(1).optional(),
  secretEnv: z
    .string()
    .regex(/^[A-Z][A-Z0-9_]{0,127}$/, 'an environment variable name such as TANDEM_WEBHOOK_SECRET_SLACK'),
});

const ASK_ONLY = ['deadline', 'onExpiry', 'group'] as const;
const FILTERS = ['agents', 'tools', 'actionClasses', 'riskLevels', 'arguments'] as const;

/** The approval policy (parsed: durations in milliseconds). See policy/example.yaml. */
export const Policy = z
  .strictObject({
    version: z.string().trim().min(1).max(100),
    defaults: Defaults.prefault({}),
    escalation: Escalation.optional(),
    trust: Trust.prefault({}),
    rules: z.array(PolicyRule).max(1000).default([]),
    agents: z.record(Name, AgentEntry).default({}),
    webhooks: z.array(Webhook).max(100).default([]),
  })
  .superRefine((policy, context) => {
    const escalating: string[] = [];
    if (policy.defaults.onExpiry === 'escalate') escalating.push('defaults.onExpiry');
    if (policy.defaults.reminderBefore >= policy.defaults.deadline && policy.defaults.reminderBefore > 0) {
      context.addIssue({
        code: 'custom',
        path: ['defaults', 'reminderBefore'],
        message: 'the reminder must come before the deadline (reminderBefore < deadline)',
      });
    }
    const ids = new Map<string, number>();
    policy.rules.forEach((rule, index) => {
      const first = ids.get(rule.id);
      if (first !== undefined) {
        context.addIssue({
          code: 'custom',
          path: ['rules', index, 'id'],
          message: `duplicate rule id ${JSON.stringify(rule.id)} (also rules[${first}])`,
        });
      } else ids.set(rule.id, index);
      if (!FILTERS.some((filter) => rule[filter] !== undefined)) {
        context.addIssue({
          code: 'custom',
          path: ['rules', index],
          message: `rule ${JSON.stringify(rule.id)} has no filter (${FILTERS.join(', ')}): it would match every step`,
        });
      }
      if (rule.effect !== 'ask') {
        for (const field of ASK_ONLY) {
          if (rule[field] !== undefined) {
            context.addIssue({
              code: 'custom',
              path: ['rules', index, field],
              message: `${field} applies to ask rules only; this rule's effect is ${rule.effect}`,
            });
          }
        }
      }
      if (rule.onExpiry === 'escalate') escalating.push(`rules[${index}].onExpiry`);
    });
    if (escalating.length > 0 && policy.escalation === undefined) {
      context.addIssue({
        code: 'custom',
        path: ['escalation'],
        message: `an escalation group is required: ${escalating.join(', ')} is escalate`,
      });
    }
    const sources = new Map<string, string>();
    for (const [agent, entry] of Object.entries(policy.agents)) {
      for (const source of entry.sources) {
        const other = sources.get(source);
        if (other !== undefined && other !== agent) {
          context.addIssue({
            code: 'custom',
            path: ['agents', agent, 'sources'],
            message: `source ${JSON.stringify(source)} is also listed for agent ${JSON.stringify(other)}`,
          });
        }
        sources.set(source, agent);
      }
    }
    const names = new Set<string>();
    policy.webhooks.forEach((webhook, index) => {
      if (names.has(webhook.name)) {
        context.addIssue({
          code: 'custom',
          path: ['webhooks', index, 'name'],
          message: `duplicate webhook name ${JSON.stringify(webhook.name)}`,
        });
      }
      names.add(webhook.name);
    });
  });
/** The approval policy (parsed: durations in milliseconds). */
export type Policy = z.output<typeof Policy>;

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path
    .map((segment, index) =>
      typeof segment === 'number' ? `[${segment}]` : `${index === 0 ? '' : '.'}${String(segment)}`,
    )
    .join('');
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((key) => JSON.stringify(key)).join(', ');
    return `${formatPath(issue.path)}: unknown key${issue.keys.length > 1 ? 's' : ''} ${keys}`;
  }
  return `${formatPath(issue.path)}: ${issue.message}`;
}

/**
 * Parses and validates policy text (YAML, which includes JSON). `origin` names the source in errors.
 * Throws a PolicyError listing every problem.
 */
export function parsePolicy(text: string, origin: string): Policy {
  const document = parseDocument(text, { uniqueKeys: true, prettyErrors: true, strict: true });
  if (document.errors.length > 0) {
    throw new PolicyError(
      `${origin}: not valid YAML or JSON`,
      document.errors.map((error) => error.message.split('\n')[0] ?? error.message),
    );
  }
  let raw: unknown;
  try {
    raw = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new PolicyError(
      `${origin}: cannot read the document (${error instanceof Error ? error.message : String(error)})`,
      [],
      {
        cause: error,
      },
    );
  }
  if (raw === null || raw === undefined) throw new PolicyError(`${origin}: the policy is empty`);
  const parsed = Policy.safeParse(raw);
  if (!parsed.success) {
    throw new PolicyError(`${origin}: invalid approval policy`, parsed.error.issues.map(describeIssue));
  }
  return parsed.data;
}

/** A loaded policy with what every decision records about it. */
export interface LoadedPolicy {
  policy: Policy;
  /** The policy's own `version`. */
  version: string;
  /** sha256 (hex) of the file's text. */
  hash: string;
  /** The file it came from. */
  origin: string;
}

/**
 * A policy file's text parsed, with its version and the hash of the text (the caller reads the file:
 * src/policy-file.ts). Throws a PolicyError.
 */
export function loadedPolicy(text: string, origin: string): LoadedPolicy {
  const policy = parsePolicy(text, origin);
  return { policy, version: policy.version, hash: createHash('sha256').update(text).digest('hex'), origin };
}
