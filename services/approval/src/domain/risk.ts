import {
  CREDENTIAL_HEADERS,
  RISK_LEVELS,
  dropNullProperties,
  findForbiddenKey,
  parseIp,
  referencedStepKeysDeep,
  toolRegistry,
  type JsonValue,
  type PlannedStep,
  type RiskClass,
  type RiskLevel,
  type RiskReason,
} from '@tandem/contracts';
import { HTTP_REQUEST_TOOL, isReadMethod } from './action-class.js';

/*
 * Deterministic risk rules for one planned step. Every rule that fires adds a reason with a stable id;
 * the step's level is the highest level among its reasons (there is always at least the base reason).
 * A model's second opinion may only raise the result (raiseRisk). "Unknown means high": anything these
 * rules cannot read (an unknown tool, arguments that do not parse, a URL or path built at run time from
 * an earlier step's output) counts as high.
 *
 * | rule                      | level          | fires when                                                                  |
 * |---------------------------|----------------|-----------------------------------------------------------------------------|
 * | class.read                | low            | base: risk class read (the registry's class when it is higher than the step's) |
 * | class.compute             | low            | base: risk class compute                                                    |
 * | class.write               | medium         | base: risk class write                                                      |
 * | class.network             | medium         | base: risk class network                                                    |
 * | class.destructive         | high           | base: risk class destructive                                                |
 * | tool.unknown              | high           | the tool is not in the registry                                             |
 * | tool.class-mismatch       | high           | the step's risk class differs from the registry's for its tool              |
 * | tool.side-effects         | high           | the tool (or step) changes something outside Tandem; http_request: see below |
 * | args.invalid              | high           | the arguments do not parse with the tool's input schema                     |
 * | args.forbidden-key        | high           | an argument key is __proto__, constructor or prototype                      |
 * | args.secret-path          | high/critical  | a secret-looking path: read (or listed) high; written or deleted critical    |
 * | args.dynamic-path         | medium/high    | a path taken from an earlier step's output: read medium, write/delete high  |
 * | args.broad-delete         | critical       | a destructive step on a root, wildcard or directory-like path               |
 * | http.write-method         | high           | http_request with a method other than GET/HEAD (external side effect)        |
 * | http.bad-url              | high           | the URL does not parse or is not http(s)                                    |
 * | http.dynamic-host         | high           | the URL's host comes from an earlier step's output                          |
 * | http.ip-host              | high           | the URL's host is an IP literal                                             |
 * | http.internal-host        | high           | localhost, *.local, *.internal, *.localhost or a single-label host          |
 * | http.plaintext            | medium         | http:// instead of https://                                                 |
 * | http.url-credentials      | high           | user:password@ in the URL (touches a secret)                                |
 * | http.url-secret-param     | high           | a token/password/secret query parameter with a literal value (secret)       |
 * | http.literal-credential   | high           | an Authorization or Cookie header with a literal value (secret)             |
 * | http.secret-header        | medium         | a header filled from a named secret: credential use. The plan never sees the |
 * |                           |                | value, so this alone does not make the step secret-touching                 |
 * | code.secret-path          | high           | run_code whose code or spec names a secret-looking path (touches a secret)  |
 * | code.from-spec            | low            | run_code with a spec: written after approval, runs only in the sandbox      |
 * | code.large                | medium         | run_code with more than 20,000 characters of code                           |
 * | code.python-eval          | medium         | python eval(, exec( or compile(                                             |
 * | code.python-dangerous     | high           | python process, network, native or dynamic-import modules and calls:        |
 * |                           |                | subprocess, socket, ctypes, importlib, pickle, urllib, os.system, os.exec*, |
 * |                           |                | shutil.rmtree, __import__, getattr(os, ...) ...; and the C modules behind   |
 * |                           |                | them (_socket, _posixsubprocess, _ctypes, _pickle, posix.system, _imp ...)  |
 * | code.js-dynamic           | high           | javascript eval, Function(, import(, require(, constructor.constructor       |
 * | code.js-module            | high           | javascript static import (QuickJS std/os reach files and processes)         |
 * | code.js-network           | high           | javascript fetch, XMLHttpRequest, WebSocket, process.*, child_process       |
 * | plan.secret-then-network  | critical       | another step of the plan touches a secret and this step sends data out      |
 * | plan.secret-reference     | critical       | this step sends out the output of a step that touched a secret              |
 * | plan.secret-propagation   | high           | this step uses the output of a step that touched a secret (it touches it too) |
 * | task.production           | one level up   | the task is a production task and the step writes, goes to the network,     |
 * |                           |                | deletes or has an external side effect                                      |
 *
 * "Sends data out" means any http_request (a GET carries data in its URL) or any external side effect.
 * A production task: its kind has a `prod` or `production` word (`deploy-prod`, not `product-report`),
 * or its input has `environment`, `env` or `stage` set to `prod`/`production`, or `production: true`.
 */

/** What risk is judged against besides the step itself. */
export interface RiskContext {
  plan: readonly PlannedStep[];
  task: { kind: string; goal?: string; input?: JsonValue | null };
}

/** The risk of one step, with every reason. */
export interface RiskAssessment {
  level: RiskLevel;
  reasons: RiskReason[];
  /** The step changes something outside Tandem (a non-GET request, a tool with side effects). */
  externalSideEffect: boolean;
  /** The step reads, writes or carries something that looks like a secret. */
  secretTouching: boolean;
}

/** Code longer than this (characters) is too much for a reviewer to read at a glance. */
export const LARGE_CODE_CHARS = 20_000;

/** The higher of two levels. */
export function maxLevel(a: RiskLevel, b: RiskLevel): RiskLevel {
  return RISK_LEVELS.indexOf(a) >= RISK_LEVELS.indexOf(b) ? a : b;
}

/** The level above (critical stays critical). */
export function nextLevel(level: RiskLevel): RiskLevel {
  const index = RISK_LEVELS.indexOf(level);
  return RISK_LEVELS[Math.min(index + 1, RISK_LEVELS.length - 1)] ?? 'critical';
}

/** The highest level among reasons (low when there are none). */
export function levelOf(reasons: readonly RiskReason[]): RiskLevel {
  return reasons.reduce<RiskLevel>((level, reason) => maxLevel(level, reason.level), 'low');
}

/**
 * A second opinion (e.g. a model's): it may raise the level, never lower it, and is kept as a reason
 * `opinion.<source>`.
 */
export function raiseRisk(
  assessment: RiskAssessment,
  opinion: { level: RiskLevel; reason: string; source: string },
): RiskAssessment {
  const reasons = [
    ...assessment.reasons,
    { rule: `opinion.${opinion.source}`, level: opinion.level, message: opinion.reason },
  ];
  return { ...assessment, reasons, level: maxLevel(assessment.level, opinion.level) };
}

const BASE_LEVEL: Readonly<Record<RiskClass, RiskLevel>> = {
  read: 'low',
  compute: 'low',
  write: 'medium',
  network: 'medium',
  destructive: 'high',
};

/** The risk class rules use: the registry's for the tool when that is riskier than the step's own. */
export function effectiveRiskClass(step: Pick<PlannedStep, 'tool' | 'riskClass'>): RiskClass {
  const registered = toolRegistry.get(step.tool)?.risk;
  if (registered === undefined || registered === step.riskClass) return step.riskClass;
  if (registered === 'destructive' || step.riskClass === 'destructive') return 'destructive';
  const stepIndex = RISK_LEVELS.indexOf(BASE_LEVEL[step.riskClass]);
  const registeredIndex = RISK_LEVELS.indexOf(BASE_LEVEL[registered]);
  return registeredIndex > stepIndex ? registered : step.riskClass;
}

/** Whether a step's risk class (its own or its tool's) is destructive. */
export function isDestructive(step: Pick<PlannedStep, 'tool' | 'riskClass'>): boolean {
  return step.riskClass === 'destructive' || toolRegistry.get(step.tool)?.risk === 'destructive';
}

// ---- paths -----------------------------------------------------------------------------------------

const SECRET_DIRECTORIES: ReadonlySet<string> = new Set([
  '.ssh',
  '.aws',
  '.gnupg',
  '.kube',
  '.azure',
  '.gcloud',
  '.docker',
  '.secrets',
  'secrets',
]);
const SECRET_FILE_NAMES: ReadonlySet<string> = new Set([
  '.npmrc',
  '.netrc',
  '_netrc',
  '.pgpass',
  '.pypirc',
  '.git-credentials',
  '.htpasswd',
  '.dockercfg',
  'shadow',
]);
const SECRET_EXTENSIONS: ReadonlySet<string> = new Set([
  'pem',
  'key',
  'p12',
  'pfx',
  'jks',
  'keystore',
  'ppk',
  'kdbx',
  'env',
]);
const SECRET_BASENAME =
  /^\.env(\..*)?$|^id_(rsa|dsa|ecdsa|ed25519)(?!\.pub$)|credential|secret|(^|[^a-z0-9])(tokens?|passwords?|passwd|api[-_]?keys?|private[-_]?keys?)([^a-z0-9]|$)/;

function pathSegments(path: string): string[] {
  return path
    .trim()
    .replace(/\\/g, '/')
    .toLowerCase()
    .split('/')
    .filter((segment) => segment.length > 0 && segment !== '.');
}

/**
 * Whether a path looks like it holds a secret: `.env` and `.env.*`, SSH keys, `*.pem`/`*.key`/`*.p12`,
 * credentials and secrets files, `.ssh/` and `.aws/`, `.npmrc`/`.netrc`, a token or password in the name.
 */
export function isSecretPath(path: string): boolean {
  const segments = pathSegments(path);
  const basename = segments.at(-1);
  if (basename === undefined) return false;
  if (segments.some((segment) => SECRET_DIRECTORIES.has(segment))) return true;
  if (SECRET_FILE_NAMES.has(basename)) return true;
  const dot = basename.lastIndexOf('.');
  if (dot > 0 && SECRET_EXTENSIONS.has(basename.slice(dot + 1))) return true;
  return SECRET_BASENAME.test(basename);
}

/** Whether a path names the workspace root, a wildcard, or something that may be a directory. */
export function isBroadPath(path: string): boolean {
  const trimmed = path.trim();
  if (trimmed === '' || trimmed.endsWith('/') || trimmed.endsWith('\\')) return true;
  if (/[*?[\]{}]/.test(trimmed)) return true;
  const segments = pathSegments(trimmed);
  const basename = segments.at(-1);
  if (basename === undefined || basename === '..' || basename === '~') return true;
  // No extension (and not a dotfile such as .gitignore): could be a directory.
  return !basename.includes('.');
}

const REFERENCE_MARK = '{{';

/** Arguments whose key says they hold a workspace path. */
const PATH_KEY = /path|prefix|file|dir|folder|source|destination|target|^from$|^to$/i;

function pathArguments(args: Record<string, JsonValue>): string[] {
  const paths: string[] = [];
  for (const [key, value] of Object.entries(args)) {
    if (!PATH_KEY.test(key)) continue;
    if (typeof value === 'string') paths.push(value);
    else if (Array.isArray(value)) for (const item of value) if (typeof item === 'string') paths.push(item);
  }
  return paths;
}

/** Path-like words in code or prose: string literals split on spaces, file-like tokens only. */
function mentionedPaths(text: string, prose: boolean): string[] {
  const pieces: string[] = [];
  if (prose) {
    pieces.push(...text.split(/[\s"'`(),;:<>]+/));
  } else {
    for (const match of text.matchAll(/(["'`])((?:\\.|(?!\1)[^\\\r\n])*)\1/g)) {
      pieces.push(...(match[2] ?? '').split(/\s+/));
    }
  }
  return pieces
    .map((piece) => piece.replace(/^[[{]+|[\]}.!?]+$/g, ''))
    .filter((piece) => piece.length > 0 && piece.length <= 512)
    .filter(
      (piece) =>
        /[./]/.test(piece) || SECRET_FILE_NAMES.has(piece) || /^id_(rsa|dsa|ecdsa|ed25519)$/.test(piece),
    );
}

// ---- code ------------------------------------------------------------------------------------------

const PYTHON_DANGEROUS_MODULES: ReadonlySet<string> = new Set([
  'subprocess',
  'socket',
  'socketserver',
  'ctypes',
  'cffi',
  'importlib',
  'pickle',
  'cpickle',
  'dill',
  'marshal',
  'shelve',
  'multiprocessing',
  'pty',
  'pexpect',
  'urllib',
  'urllib2',
  'urllib3',
  'http',
  'requests',
  'httpx',
  'aiohttp',
  'ftplib',
  'smtplib',
  'telnetlib',
  'ssl',
  'xmlrpc',
  'webbrowser',
  'paramiko',
  'builtins',
  '__builtin__',
]);
/**
 * The C modules (and `posix`/`nt`, which `os` is built on) behind the dangerous modules: they do the same
 * under another name (`_socket.socket()`, `_posixsubprocess.fork_exec`, `posix.system`), so they rate the
 * same. A leading-underscore name whose plain name is dangerous (`_socket`, `_ctypes`, `_pickle`, `_ssl`)
 * is caught by `dangerousPythonModule` without being listed here.
 */
const PYTHON_DANGEROUS_ALIASES: ReadonlySet<string> = new Set([
  '_posixsubprocess',
  '_winapi',
  'posix',
  'nt',
  '_posixshmem',
  '_imp',
  '_frozen_importlib',
  '_frozen_importlib_external',
]);

/** Whether importing `module` (its top-level name) gives process, network, native or dynamic-import powers. */
function dangerousPythonModule(module: string): boolean {
  const name = module.toLowerCase();
  if (PYTHON_DANGEROUS_MODULES.has(name) || PYTHON_DANGEROUS_ALIASES.has(name)) return true;
  const plain = name.replace(/^_+/, '');
  return plain !== name && PYTHON_DANGEROUS_MODULES.has(plain);
}

const PYTHON_DANGEROUS_OS_NAMES = /^(system|popen\w*|exec\w*|spawn\w*|fork\w*|kill\w*|posix_spawn\w*|\*)$/;
const PYTHON_DANGEROUS_CALLS: ReadonlyArray<[RegExp, string]> = [
  [/\b__import__\b/, '__import__'],
  [/\bimportlib\b/, 'importlib'],
  [
    /\b(os|posix|nt)\s*\.\s*(system|popen\w*|exec\w*|spawn\w*|fork\w*|kill\w*|posix_spawn\w*)\b/,
    'os process calls',
  ],
  [/\bshutil\s*\.\s*rmtree\b/, 'shutil.rmtree'],
  [/\b__builtins__\b/, '__builtins__'],
  [
    /\bgetattr\s*\(\s*(os|posix|nt|sys|builtins|__builtins__|subprocess|_posixsubprocess|shutil)\b/,
    'getattr on a system module',
  ],
  [/\bcreate_subprocess_\w+/, 'asyncio subprocesses'],
  [/\bsys\s*\.\s*modules\b/, 'sys.modules'],
];

function pythonDangers(code: string): string[] {
  const found = new Set<string>();
  for (const line of code.split(/[\n;]/)) {
    const plain = /^\s*import\s+(.+)$/.exec(line);
    if (plain) {
      for (const part of (plain[1] ?? '').split(',')) {
        const module = (part.trim().split(/\s+/)[0] ?? '').split('.')[0] ?? '';
        if (dangerousPythonModule(module)) found.add(module);
      }
      continue;
    }
    const from = /^\s*from\s+([\w.]+)\s+import\s+(.+)$/.exec(line);
    if (from) {
      const module = (from[1] ?? '').split('.')[0] ?? '';
      const names = (from[2] ?? '')
        .replace(/[()]/g, '')
        .split(',')
        .map((name) => name.trim().split(/\s+/)[0] ?? '');
      if (dangerousPythonModule(module)) found.add(module);
      else if (module === 'os' && names.some((name) => PYTHON_DANGEROUS_OS_NAMES.test(name)))
        found.add(`from os import ${names.join(', ')}`);
      else if (module === 'shutil' && names.some((name) => name === 'rmtree' || name === '*'))
        found.add('shutil.rmtree');
    }
  }
  for (const [pattern, label] of PYTHON_DANGEROUS_CALLS) if (pattern.test(code)) found.add(label);
  return [...found];
}

const JS_DYNAMIC: ReadonlyArray<[RegExp, string]> = [
  [/\beval\b/, 'eval'],
  [/\bFunction\s*\(/, 'Function('],
  [/\bimport\s*\(/, 'import('],
  [/\brequire\s*\(/, 'require('],
  [/\.\s*constructor\s*\.\s*constructor\b|\[\s*["'`]constructor["'`]\s*\]/, 'constructor.constructor'],
];
const JS_MODULE = /(^|[\n;])\s*import\s*(?:[\w*{}\s,$]+\s+from\s*)?["'`]([^"'`]+)["'`]/g;
const JS_NETWORK =
  /\b(fetch|XMLHttpRequest|WebSocket|child_process)\b|\bprocess\s*\.\s*(binding|dlopen|env|exit|kill)\b/;

// ---- http ------------------------------------------------------------------------------------------

const SECRET_QUERY_PARAMETER =
  /^(token|access_token|id_token|refresh_token|auth|auth_token|api_key|apikey|api-key|password|passwd|pwd|secret|client_secret|private_key)$/i;

function isInternalHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host.endsWith('.local') ||
    host.endsWith('.internal') ||
    !host.includes('.')
  );
}

// ---- assembling ------------------------------------------------------------------------------------

interface StepFindings {
  reasons: RiskReason[];
  externalSideEffect: boolean;
  secretTouching: boolean;
  /** The step sends data outside Tandem (any http_request, any external side effect). */
  sendsOut: boolean;
}

function stringArgument(args: Record<string, JsonValue>, key: string): string | undefined {
  const value = args[key];
  return typeof value === 'string' ? value : undefined;
}

function quote(text: string): string {
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 117)}...` : text);
}

type Access = 'read' | 'write' | 'destructive';

function accessOf(riskClass: RiskClass): Access | null {
  if (riskClass === 'read') return 'read';
  if (riskClass === 'write') return 'write';
  if (riskClass === 'destructive') return 'destructive';
  return null;
}

function assessHttp(args: Record<string, JsonValue>, findings: StepFindings): void {
  const add = (rule: string, level: RiskLevel, message: string): void => {
    findings.reasons.push({ rule, level, message });
  };
  findings.sendsOut = true;
  const method = args['method'];
  if (!isReadMethod(method)) {
    findings.externalSideEffect = true;
    add(
      'http.write-method',
      'high',
      typeof method === 'string'
        ? `http_request ${quote(method)} can change something outside Tandem`
        : 'http_request without a readable method counts as one that changes something outside Tandem',
    );
  }
  const url = stringArgument(args, 'url');
  if (url !== undefined) {
    const dynamic = url.includes(REFERENCE_MARK);
    const placeholder = 'tandem-reference-placeholder';
    const text = dynamic ? url.replace(/\{\{[^}]*\}\}/g, placeholder) : url;
    let parsed: URL | null = null;
    try {
      parsed = new URL(text);
    } catch {
      parsed = null;
    }
    if (parsed === null || (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')) {
      add('http.bad-url', 'high', `the URL ${quote(url)} is not a readable http(s) URL`);
    } else {
      const hostname = parsed.hostname.replace(/^\[|\]$/g, '');
      if (dynamic && hostname.includes(placeholder)) {
        add('http.dynamic-host', 'high', "the URL's host is taken from an earlier step's output");
      } else if (parseIp(hostname) !== null) {
        add('http.ip-host', 'high', `the URL's host ${hostname} is an IP address, not a name`);
      } else if (isInternalHost(hostname)) {
        add('http.internal-host', 'high', `the URL's host ${hostname} looks internal`);
      }
      if (parsed.protocol === 'http:')
        add('http.plaintext', 'medium', 'the request is not encrypted (http://)');
      if (parsed.username !== '' || parsed.password !== '') {
        findings.secretTouching = true;
        add('http.url-credentials', 'high', 'the URL carries a user name or password');
      }
      for (const [name, value] of parsed.searchParams) {
        if (SECRET_QUERY_PARAMETER.test(name) && value !== '' && !value.includes(placeholder)) {
          findings.secretTouching = true;
          add('http.url-secret-param', 'high', `the URL carries a literal credential in ?${name}=`);
          break;
        }
      }
    }
  }
  const headers = args['headers'];
  if (Array.isArray(headers)) {
    let usesSecret = false;
    for (const header of headers) {
      if (header === null || typeof header !== 'object' || Array.isArray(header)) continue;
      const name = typeof header['name'] === 'string' ? header['name'] : '';
      if (typeof header['secret'] === 'string') usesSecret = true;
      if (typeof header['value'] === 'string' && CREDENTIAL_HEADERS.has(name.toLowerCase())) {
        findings.secretTouching = true;
        add('http.literal-credential', 'high', `the ${name} header carries a literal credential`);
      }
    }
    if (usesSecret)
      add('http.secret-header', 'medium', 'a header is filled from a named secret (credential use)');
  }
}

function assessCode(args: Record<string, JsonValue>, findings: StepFindings): void {
  const add = (rule: string, level: RiskLevel, message: string): void => {
    findings.reasons.push({ rule, level, message });
  };
  const language = stringArgument(args, 'language');
  const code = stringArgument(args, 'code');
  const spec = stringArgument(args, 'spec');
  if (code === undefined && spec !== undefined) {
    // The program does not exist yet; what bounds it is the sandbox (no network, no secrets, hard
    // limits), and the spec is still scanned below for secret paths. Recorded so reviewers see it.
    add(
      'code.from-spec',
      'low',
      'the program is written by the code model after approval, from a spec, and runs only in the sandbox',
    );
  }
  const secretMentions = [
    ...(code === undefined ? [] : mentionedPaths(code, false)),
    ...(spec === undefined ? [] : mentionedPaths(spec, true)),
  ].filter(isSecretPath);
  if (secretMentions.length > 0) {
    findings.secretTouching = true;
    add(
      'code.secret-path',
      'high',
      `the program names secret-looking paths: ${[...new Set(secretMentions)].slice(0, 5).map(quote).join(', ')}`,
    );
  }
  if (code === undefined) return;
  if (code.length > LARGE_CODE_CHARS) {
    add('code.large', 'medium', `the program is ${code.length} characters (more than ${LARGE_CODE_CHARS})`);
  }
  const python = language !== 'javascript';
  const javascript = language !== 'python';
  if (python) {
    const dangers = pythonDangers(code);
    if (dangers.length > 0) {
      add(
        'code.python-dangerous',
        'high',
        `the Python program uses process, network, native or dynamic-import features: ${dangers.slice(0, 5).join(', ')}`,
      );
    }
    if (/(?<![\w.])(eval|exec|compile)\s*\(/.test(code)) {
      add('code.python-eval', 'medium', 'the Python program evaluates code it builds (eval/exec/compile)');
    }
  }
  if (javascript) {
    const dynamic = JS_DYNAMIC.filter(([pattern]) => pattern.test(code)).map(([, label]) => label);
    if (dynamic.length > 0) {
      add(
        'code.js-dynamic',
        'high',
        `the JavaScript program loads or evaluates code at run time: ${dynamic.join(', ')}`,
      );
    }
    const modules = [...code.matchAll(JS_MODULE)].map((match) => match[2] ?? '');
    if (modules.length > 0) {
      add(
        'code.js-module',
        'high',
        `the JavaScript program imports modules (${modules.slice(0, 5).map(quote).join(', ')}); QuickJS std/os reach files and processes`,
      );
    }
    const network = JS_NETWORK.exec(code);
    if (network) add('code.js-network', 'high', `the JavaScript program uses ${network[0]}`);
  }
}

function assessPaths(
  step: PlannedStep,
  riskClass: RiskClass,
  args: Record<string, JsonValue>,
  findings: StepFindings,
): void {
  const access = accessOf(riskClass);
  if (access === null) return;
  for (const path of pathArguments(args)) {
    if (path.includes(REFERENCE_MARK)) {
      findings.reasons.push({
        rule: 'args.dynamic-path',
        level: access === 'read' ? 'medium' : 'high',
        message: `${step.tool} uses a path taken from an earlier step's output (${quote(path)})`,
      });
      continue;
    }
    if (isSecretPath(path)) {
      findings.secretTouching = true;
      findings.reasons.push({
        rule: 'args.secret-path',
        level: access === 'read' ? 'high' : 'critical',
        message: `${step.tool} ${access === 'read' ? 'reads' : access === 'write' ? 'writes' : 'deletes'} ${quote(path)}, which looks like a secret`,
      });
    }
    if (access === 'destructive' && isBroadPath(path)) {
      findings.reasons.push({
        rule: 'args.broad-delete',
        level: 'critical',
        message: `${step.tool} acts on ${quote(path)}: the root, a wildcard or what may be a directory`,
      });
    }
  }
}

/** The step's own findings, without plan or task context. */
function assessStep(step: PlannedStep): StepFindings {
  const findings: StepFindings = {
    reasons: [],
    externalSideEffect: false,
    secretTouching: false,
    sendsOut: false,
  };
  const add = (rule: string, level: RiskLevel, message: string): void => {
    findings.reasons.push({ rule, level, message });
  };
  const tool = toolRegistry.get(step.tool);
  const riskClass = effectiveRiskClass(step);
  add(`class.${riskClass}`, BASE_LEVEL[riskClass], `${step.tool} is in risk class ${riskClass}`);
  if (tool === undefined) {
    add('tool.unknown', 'high', `${quote(step.tool)} is not a known tool: unknown means high`);
  } else {
    if (tool.risk !== step.riskClass) {
      add(
        'tool.class-mismatch',
        'high',
        `the step says risk class ${step.riskClass} but ${step.tool} is ${tool.risk}`,
      );
    }
    const parsed = tool.input.safeParse(dropNullProperties(step.arguments));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      add(
        'args.invalid',
        'high',
        `the arguments do not fit ${step.tool}'s input (${where}${issue?.message ?? 'invalid'}): unknown means high`,
      );
    }
  }
  const forbidden = findForbiddenKey(step.arguments);
  if (forbidden !== null) {
    add('args.forbidden-key', 'high', `an argument key is ${quote(forbidden.key)}`);
  }

  const args = step.arguments;
  if (step.tool === HTTP_REQUEST_TOOL) {
    assessHttp(args, findings);
  } else if ((tool?.sideEffects ?? false) || step.sideEffects) {
    findings.externalSideEffect = true;
    findings.sendsOut = true;
    add('tool.side-effects', 'high', `${step.tool} changes something outside Tandem`);
  }
  if (step.tool === 'run_code') assessCode(args, findings);
  else if (step.tool !== HTTP_REQUEST_TOOL) assessPaths(step, riskClass, args, findings);
  return findings;
}

/** Keys of the plan's steps that touched a secret, directly or by using such a step's output. */
function secretKeys(
  plan: readonly PlannedStep[],
  findingsOf: (step: PlannedStep) => StepFindings,
): Set<string> {
  const tainted = new Set(plan.filter((step) => findingsOf(step).secretTouching).map((step) => step.key));
  const references = new Map(plan.map((step) => [step.key, referencedStepKeysDeep(step.arguments)]));
  let changed = true;
  while (changed) {
    changed = false;
    for (const step of plan) {
      if (tainted.has(step.key)) continue;
      if ((references.get(step.key) ?? []).some((key) => tainted.has(key))) {
        tainted.add(step.key);
        changed = true;
      }
    }
  }
  return tainted;
}

function valueIsProduction(value: JsonValue | undefined): boolean {
  return typeof value === 'string' && /^(prod|production)$/i.test(value.trim());
}

/** Whether a task runs against production (see the table above). */
export function isProductionTask(task: RiskContext['task']): boolean {
  const words = task.kind.toLowerCase().split(/[^a-z0-9]+/);
  if (words.includes('prod') || words.includes('production')) return true;
  const input = task.input;
  if (input === null || input === undefined || typeof input !== 'object' || Array.isArray(input))
    return false;
  for (const [key, value] of Object.entries(input)) {
    const name = key.toLowerCase();
    if ((name === 'environment' || name === 'env' || name === 'stage') && valueIsProduction(value))
      return true;
    if (name === 'production' && value === true) return true;
  }
  return false;
}

/** The deterministic risk of one step in its plan and task (see the rules table at the top). */
export function assessRisk(step: PlannedStep, context: RiskContext): RiskAssessment {
  const plan = context.plan.some((other) => other.key === step.key)
    ? context.plan.map((other) => (other.key === step.key ? step : other))
    : [...context.plan, step];
  const findings = new Map<PlannedStep, StepFindings>();
  const findingsOf = (other: PlannedStep): StepFindings => {
    let found = findings.get(other);
    if (found === undefined) {
      found = assessStep(other);
      findings.set(other, found);
    }
    return found;
  };
  const own = findingsOf(step);
  const reasons = [...own.reasons];
  let secretTouching = own.secretTouching;
  const tainted = secretKeys(plan, findingsOf);
  const referencedSecrets = referencedStepKeysDeep(step.arguments).filter(
    (key) => key !== step.key && tainted.has(key),
  );
  const otherSecretSteps = plan.filter((other) => other.key !== step.key && findingsOf(other).secretTouching);

  if (own.sendsOut && otherSecretSteps.length > 0) {
    reasons.push({
      rule: 'plan.secret-then-network',
      level: 'critical',
      message: `the plan touches a secret (${otherSecretSteps
        .slice(0, 3)
        .map((other) => `${other.key}: ${other.tool}`)
        .join(', ')}) and this step sends data out of Tandem: possible exfiltration`,
    });
  }
  if (referencedSecrets.length > 0) {
    secretTouching = true;
    reasons.push(
      own.sendsOut
        ? {
            rule: 'plan.secret-reference',
            level: 'critical',
            message: `this step sends out the output of ${referencedSecrets.join(', ')}, which touched a secret`,
          }
        : {
            rule: 'plan.secret-propagation',
            level: 'high',
            message: `this step uses the output of ${referencedSecrets.join(', ')}, which touched a secret`,
          },
    );
  }

  const riskClass = effectiveRiskClass(step);
  if (
    (riskClass === 'write' ||
      riskClass === 'network' ||
      riskClass === 'destructive' ||
      own.externalSideEffect) &&
    isProductionTask(context.task)
  ) {
    const raised = nextLevel(levelOf(reasons));
    reasons.push({
      rule: 'task.production',
      level: raised,
      message: `the task runs against production: one level up for a ${riskClass} step`,
    });
  }

  return { level: levelOf(reasons), reasons, externalSideEffect: own.externalSideEffect, secretTouching };
}
