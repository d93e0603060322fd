/**
 * Policy files that must be refused, each with a part of the error message that must say why and where.
 */
export const HOSTILE_POLICIES: ReadonlyArray<{ name: string; text: string; message: RegExp }> = [
  {
    name: 'an unknown top-level key',
    text: 'version: "1"\nrulez: []\n',
    message: /\(top level\): unknown key "rulez"/,
  },
  {
    name: 'an unknown key in a rule',
    text: 'version: "1"\nrules:\n  - id: a\n    effect: deny\n    tools: [write_file]\n    efect: allow\n',
    message: /rules\[0\]: unknown key "efect"/,
  },
  {
    name: 'an unknown key in defaults',
    text: 'version: "1"\ndefaults: { deadline: 1h, timeout: 5m }\n',
    message: /defaults: unknown key "timeout"/,
  },
  {
    name: 'a regular expression that does not compile',
    text: 'version: "1"\nrules:\n  - id: a\n    effect: deny\n    arguments: { path: "^(prod" }\n',
    message: /rules\[0\]\.arguments\.path: not a valid regular expression/,
  },
  {
    name: 'high in trust',
    text: 'version: "1"\ntrust:\n  high: { minScore: 0.9, minSuccesses: 100 }\n',
    message: /trust\.high: high and critical steps are never approved by trust alone/,
  },
  {
    name: 'critical in trust',
    text: 'version: "1"\ntrust:\n  critical: { minScore: 1, minSuccesses: 1000 }\n',
    message: /trust\.critical: high and critical/,
  },
  {
    name: 'a negative minScore (would let rejected classes through)',
    text: 'version: "1"\ntrust:\n  low: { minScore: -0.5, minSuccesses: 0 }\n',
    message: /trust\.low\.minScore/,
  },
  {
    name: 'escalate without an escalation group',
    text: 'version: "1"\ndefaults: { onExpiry: escalate }\n',
    message: /escalation: an escalation group is required: defaults\.onExpiry is escalate/,
  },
  {
    name: "a rule's escalate without an escalation group",
    text: 'version: "1"\nrules:\n  - id: a\n    effect: ask\n    tools: [write_file]\n    onExpiry: escalate\n',
    message: /escalation: an escalation group is required: rules\[0\]\.onExpiry is escalate/,
  },
  {
    name: 'duplicate rule ids',
    text: 'version: "1"\nrules:\n  - { id: a, effect: deny, tools: [x] }\n  - { id: a, effect: allow, tools: [y] }\n',
    message: /rules\[1\]\.id: duplicate rule id "a" \(also rules\[0\]\)/,
  },
  {
    name: 'a rule without filters',
    text: 'version: "1"\nrules:\n  - { id: everything, effect: allow }\n',
    message: /rules\[0\]: rule "everything" has no filter/,
  },
  {
    name: 'ask-only fields on a deny rule',
    text: 'version: "1"\nrules:\n  - { id: a, effect: deny, tools: [x], deadline: 5m }\n',
    message: /rules\[0\]\.deadline: deadline applies to ask rules only/,
  },
  {
    name: 'an unknown effect',
    text: 'version: "1"\nrules:\n  - { id: a, effect: permit, tools: [x] }\n',
    message: /rules\[0\]\.effect/,
  },
  {
    name: 'an unknown risk level',
    text: 'version: "1"\nrules:\n  - { id: a, effect: deny, riskLevels: [severe] }\n',
    message: /rules\[0\]\.riskLevels\[0\]/,
  },
  {
    name: 'a bad duration',
    text: 'version: "1"\ndefaults: { deadline: soon }\n',
    message: /defaults\.deadline: "soon" is not a duration/,
  },
  {
    name: 'a deadline over 30 days',
    text: 'version: "1"\ndefaults: { deadline: 31d }\n',
    message: /defaults\.deadline: "31d" is out of range/,
  },
  {
    name: 'a reminder after the deadline',
    text: 'version: "1"\ndefaults: { deadline: 10m, reminderBefore: 1h }\n',
    message: /defaults\.reminderBefore: the reminder must come before the deadline/,
  },
  {
    name: 'a missing version',
    text: 'defaults: { deadline: 1h }\n',
    message: /version: /,
  },
  {
    name: 'a numeric version',
    text: 'version: 3\n',
    message: /version: .*expected string/,
  },
  {
    name: 'a webhook URL that is not http(s)',
    text: 'version: "1"\nwebhooks:\n  - { name: a, url: "file:///etc/passwd", secretEnv: SECRET_A }\n',
    message: /webhooks\[0\]\.url/,
  },
  {
    name: 'a webhook secretEnv that is not a variable name',
    text: 'version: "1"\nwebhooks:\n  - { name: a, url: "https://hooks.example.com", secretEnv: "whsec_abc" }\n',
    message: /webhooks\[0\]\.secretEnv: an environment variable name/,
  },
  {
    name: 'duplicate webhook names',
    text:
      'version: "1"\nwebhooks:\n  - { name: a, url: "https://a.example.com", secretEnv: A }\n' +
      '  - { name: a, url: "https://b.example.com", secretEnv: B }\n',
    message: /webhooks\[1\]\.name: duplicate webhook name "a"/,
  },
  {
    name: 'one source for two agents',
    text: 'version: "1"\nagents:\n  a: { sources: ["urn:x"] }\n  b: { sources: ["urn:x"] }\n',
    message: /agents\.b\.sources: source "urn:x" is also listed for agent "a"/,
  },
  {
    name: 'duplicate YAML keys',
    text: 'version: "1"\nversion: "2"\n',
    message: /not valid YAML or JSON/,
  },
  {
    name: 'broken YAML',
    text: 'version: "1"\nrules: [\n',
    message: /not valid YAML or JSON/,
  },
  {
    name: 'an empty file',
    text: '',
    message: /the policy is empty/,
  },
  {
    name: 'a list instead of a mapping',
    text: '- version: "1"\n',
    message: /\(top level\)/,
  },
  {
    name: 'a billion laughs',
    text:
      'a: &a ["x","x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n' +
      'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n' +
      'e: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nversion: "1"\n',
    message: /cannot read the document \(Excessive alias count/,
  },
];
