import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TOOL_CALL_LIMITS,
  DEFAULT_TOOL_CHECK_CONTEXT,
  ErrorCodes,
  dropNullProperties,
  suggestToolName,
  toolRegistry,
  validateToolArguments,
  validateToolCall,
  type ToolCheckContext,
  type ToolCallValidation,
} from '../src/index.js';

const HTTP_CONTEXT: ToolCheckContext = {
  http: { allowHosts: ['api.example.com', '*.example.org'], allowHttp: false },
  runCode: { languages: ['javascript', 'python'], maxCodeChars: 100_000 },
};

function call(name: string, args: string, context: ToolCheckContext = HTTP_CONTEXT): ToolCallValidation {
  return validateToolCall(toolRegistry, { name, arguments: args }, DEFAULT_TOOL_CALL_LIMITS, context);
}

function codeOf(result: ToolCallValidation): string | null {
  return result.ok ? null : result.error.code;
}

function messageOf(result: ToolCallValidation): string {
  return result.ok ? '' : result.error.message;
}

describe('validateToolCall: pipeline order', () => {
  it('checks size before anything else, even for text that is not JSON and names no tool', () => {
    const result = validateToolCall(toolRegistry, { name: 'nope', arguments: '{'.repeat(300 * 1024) });
    expect(codeOf(result)).toBe(ErrorCodes.TOOL_ARGUMENTS_TOO_LARGE);
  });

  it('rejects 10,000-deep nesting on the raw text before JSON.parse', () => {
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const result = call('respond', `{"answer":${deep}}`);
    expect(codeOf(result)).toBe(ErrorCodes.TOOL_ARGUMENTS_TOO_DEEP);
    // Unclosed too: the scan stops at the limit and never needs the text to parse.
    expect(codeOf(call('respond', '{"a":'.repeat(10_000)))).toBe(ErrorCodes.TOOL_ARGUMENTS_TOO_DEEP);
  });

  it('does not count brackets inside strings as nesting', () => {
    const result = call(
      'respond',
      JSON.stringify({ answer: '[[[[[[[[[[[[[[[[[[[[[[[[[[["\\{{{{{{{{{{{{{{{{{{{{{{{' }),
    );
    expect(result.ok).toBe(true);
  });

  it('parses before checking the name, and never repairs JSON', () => {
    expect(codeOf(call('unknown_tool', '{"a":'))).toBe(ErrorCodes.TOOL_INVALID_JSON);
    expect(codeOf(call('respond', '{"answer":"x",}'))).toBe(ErrorCodes.TOOL_INVALID_JSON);
    expect(codeOf(call('respond', '{answer:"x"}'))).toBe(ErrorCodes.TOOL_INVALID_JSON);
    expect(codeOf(call('respond', '```json\n{"answer":"x"}\n```'))).toBe(ErrorCodes.TOOL_INVALID_JSON);
    expect(codeOf(call('respond', ''))).toBe(ErrorCodes.TOOL_INVALID_JSON);
  });

  it('checks forbidden keys before the schema, so they get their own code', () => {
    expect(codeOf(call('respond', '{"answer":"x","__proto__":{"polluted":true}}'))).toBe(
      ErrorCodes.TOOL_FORBIDDEN_KEY,
    );
    expect(
      codeOf(
        call(
          'http_request',
          '{"method":"GET","url":"https://api.example.com","headers":[{"constructor":1}]}',
        ),
      ),
    ).toBe(ErrorCodes.TOOL_FORBIDDEN_KEY);
    expect(codeOf(call('respond', '{"answer":"x","nested":{"prototype":null}}'))).toBe(
      ErrorCodes.TOOL_FORBIDDEN_KEY,
    );
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('runs semantic checks only after the schema passed', () => {
    // A bad path in a call that also has an unknown property: the schema error wins.
    expect(codeOf(call('read_file', '{"path":"../etc/passwd","mode":"r"}'))).toBe(
      ErrorCodes.TOOL_INVALID_ARGUMENTS,
    );
    expect(codeOf(call('read_file', '{"path":"../etc/passwd"}'))).toBe(ErrorCodes.TOOL_PATH_REJECTED);
  });
});

describe('validateToolCall: function names', () => {
  it.each([
    ['FS.READ', 'read_file'],
    ['r\u0435ad_file', 'read_file'], // Cyrillic е
    ['read_fil\u0435', 'read_file'],
    ['Run_Code', 'run_code'],
    ['readFile', 'read_file'],
    ['read-file', 'read_file'],
    ['read_file ', 'read_file'],
    ['ｒｅａｄ＿ｆｉｌｅ', 'read_file'], // fullwidth
    ['http_requests', 'http_request'],
  ])('refuses the look-alike %j and only suggests %s', (name, suggestion) => {
    const result = call(name, '{"path":"a.txt"}');
    expect(codeOf(result)).toBe(ErrorCodes.TOOL_UNKNOWN_FUNCTION);
    expect(messageOf(result)).toContain(`did you mean "${suggestion}"`);
    expect(!result.ok && result.error.details).toEqual({ suggestion });
  });

  it('names the non-ASCII characters of a look-alike', () => {
    expect(messageOf(call('r\u0435ad_file', '{"path":"a.txt"}'))).toContain('U+0435');
  });

  it('suggests nothing for an unrelated name and lists what exists', () => {
    const result = call('launch_rockets', '{}');
    expect(codeOf(result)).toBe(ErrorCodes.TOOL_UNKNOWN_FUNCTION);
    expect(messageOf(result)).not.toContain('did you mean');
    expect(messageOf(result)).toContain('available: run_code, respond, read_file');
    expect(suggestToolName(toolRegistry, '')).toBeNull();
  });

  it('does not echo an enormous name', () => {
    const result = call(`x${'a'.repeat(10_000)}`, '{}');
    expect(messageOf(result).length).toBeLessThan(400);
  });
});

describe('validateToolCall: schemas', () => {
  it.each([
    ['wrong type', 'read_file', '{"path":42}'],
    ['number as string is not coerced', 'ask_human', '{"question":"q","choices":[1,2]}'],
    ['boolean as string is not coerced', 'http_request', '{"method":"GET","url":true}'],
    ['extra property', 'read_file', '{"path":"a.txt","encoding":"utf8"}'],
    [
      'extra property in a header',
      'http_request',
      '{"method":"GET","url":"https://api.example.com","headers":[{"name":"A","value":"b","x":1}]}',
    ],
    ['lower-case method', 'http_request', '{"method":"get","url":"https://api.example.com"}'],
    ['unknown method', 'http_request', '{"method":"TRACE","url":"https://api.example.com"}'],
    [
      'bad secret name',
      'http_request',
      '{"method":"GET","url":"https://api.example.com","headers":[{"name":"Authorization","secret":"github-token"}]}',
    ],
    ['a single choice', 'ask_human', '{"question":"q","choices":["only"]}'],
    ['missing path', 'read_file', '{}'],
    ['missing path', 'delete_file', '{}'],
    ['empty path', 'delete_file', '{"path":""}'],
    ['extra property', 'delete_file', '{"path":"a.txt","recursive":true}'],
    ['array instead of object', 'list_files', '[]'],
    ['scalar instead of object', 'list_files', '"reports"'],
  ])('rejects %s with TOOL.INVALID_ARGUMENTS', (_label, name, args) => {
    expect(codeOf(call(name, args))).toBe(ErrorCodes.TOOL_INVALID_ARGUMENTS);
  });

  it('accepts each new tool with strict-mode nulls and returns the arguments without them', () => {
    const cases: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
      ['read_file', { path: 'reports/q1.csv' }, { path: 'reports/q1.csv' }],
      [
        'write_file',
        { path: 'out/summary.md', content: '# Summary\n' },
        { path: 'out/summary.md', content: '# Summary\n' },
      ],
      ['write_file', { path: 'empty.txt', content: '' }, { path: 'empty.txt', content: '' }],
      ['delete_file', { path: 'reports/draft.md' }, { path: 'reports/draft.md' }],
      ['list_files', { prefix: null }, {}],
      ['list_files', { prefix: 'reports' }, { prefix: 'reports' }],
      [
        'ask_human',
        { question: 'Which region?', choices: ['eu', 'us'] },
        { question: 'Which region?', choices: ['eu', 'us'] },
      ],
      ['ask_human', { question: 'Anything else?', choices: null }, { question: 'Anything else?' }],
      [
        'http_request',
        {
          method: 'POST',
          url: 'https://api.example.com/v1/items',
          headers: [
            { name: 'Content-Type', value: 'application/json', secret: null },
            { name: 'Authorization', value: null, secret: 'API_TOKEN' },
          ],
          body: '{"a":{{steps.s1.value}}}',
        },
        {
          method: 'POST',
          url: 'https://api.example.com/v1/items',
          headers: [
            { name: 'Content-Type', value: 'application/json' },
            { name: 'Authorization', secret: 'API_TOKEN' },
          ],
          body: '{"a":{{steps.s1.value}}}',
        },
      ],
      [
        'http_request',
        { method: 'GET', url: 'https://deep.api.example.org/x', headers: null, body: null },
        { method: 'GET', url: 'https://deep.api.example.org/x' },
      ],
    ];
    for (const [name, args, expected] of cases) {
      const result = call(name, JSON.stringify(args));
      if (!result.ok) throw new Error(`${name}: ${result.error.code} ${result.error.message}`);
      expect(result.call.arguments).toEqual(expected);
    }
  });
});

describe('validateToolCall: semantic checks', () => {
  it.each([
    ['read_file', { path: '/etc/passwd' }],
    ['read_file', { path: '../secrets' }],
    ['read_file', { path: 'a/%2e%2e/%2e%2e/b' }],
    ['read_file', { path: 'a\u0000.txt' }],
    ['write_file', { path: 'C:\\Windows\\x', content: 'x' }],
    ['write_file', { path: '.', content: 'x' }],
    ['delete_file', { path: '../other-task/a.txt' }],
    ['delete_file', { path: '/etc/passwd' }],
    ['delete_file', { path: '.' }],
    ['delete_file', { path: 'reports/%2e%2e/%2e%2e/x' }],
    ['list_files', { prefix: '../..' }],
    ['list_files', { prefix: '/' }],
  ])('%s %j: TOOL.PATH_REJECTED', (name, args) => {
    expect(codeOf(call(name, JSON.stringify(args)))).toBe(ErrorCodes.TOOL_PATH_REJECTED);
  });

  it.each([
    'https://127.0.0.1/',
    'https://169.254.169.254/latest/meta-data/',
    'https://[::1]/',
    'https://0x7f000001/',
    'https://localhost/',
    'http://api.example.com/',
    'https://user:pass@api.example.com/',
    'https://evil.example.net/',
    'https://example.org/',
    'ftp://api.example.com/',
    'not a url',
  ])('http_request to %s: TOOL.URL_REJECTED', (url) => {
    expect(codeOf(call('http_request', JSON.stringify({ method: 'GET', url })))).toBe(
      ErrorCodes.TOOL_URL_REJECTED,
    );
  });

  it('refuses every http_request when no hosts are allowed, naming the setting', () => {
    const result = call(
      'http_request',
      JSON.stringify({ method: 'GET', url: 'https://api.example.com/' }),
      DEFAULT_TOOL_CHECK_CONTEXT,
    );
    expect(codeOf(result)).toBe(ErrorCodes.TOOL_URL_REJECTED);
    expect(messageOf(result)).toContain('TANDEM_HTTP_ALLOW_HOSTS');
  });

  it.each([
    ['an invalid header name', { name: 'Bad Header', value: 'x' }],
    ['a pseudo-header', { name: ':authority', value: 'x' }],
    ['CR/LF in a value', { name: 'X-Note', value: 'a\r\nX-Injected: 1' }],
    ['a bare LF in a value', { name: 'X-Note', value: 'a\nb' }],
    ['a forbidden header', { name: 'Host', value: 'internal' }],
    ['a forbidden header in another case', { name: 'transfer-encoding', value: 'chunked' }],
    ['Content-Length', { name: 'Content-Length', value: '5' }],
    ['a literal Authorization value', { name: 'Authorization', value: 'Bearer abc' }],
    ['both value and secret', { name: 'X-Key', value: 'a', secret: 'KEY' }],
    ['neither value nor secret', { name: 'X-Key' }],
  ])('refuses %s with TOOL.HEADER_REJECTED without echoing the value', (_label, header) => {
    const result = call(
      'http_request',
      JSON.stringify({ method: 'GET', url: 'https://api.example.com/', headers: [header] }),
    );
    expect(codeOf(result)).toBe(ErrorCodes.TOOL_HEADER_REJECTED);
    if ('value' in header && typeof header.value === 'string' && header.value.length > 2)
      expect(messageOf(result)).not.toContain(header.value);
  });

  it('refuses a body on GET and duplicate choices with TOOL.SEMANTIC_CHECK_FAILED', () => {
    expect(codeOf(call('http_request', '{"method":"GET","url":"https://api.example.com/","body":"x"}'))).toBe(
      ErrorCodes.TOOL_SEMANTIC,
    );
    expect(codeOf(call('ask_human', '{"question":"q","choices":["a","a"]}'))).toBe(ErrorCodes.TOOL_SEMANTIC);
  });

  it('caps write_file content at 1 MiB of UTF-8, not of characters', () => {
    const ascii = 'a'.repeat(1024 * 1024);
    const limits = { maxArgumentBytes: 8 * 1024 * 1024, maxDepth: 16 };
    const fits = validateToolCall(
      toolRegistry,
      { name: 'write_file', arguments: JSON.stringify({ path: 'a.txt', content: ascii }) },
      limits,
    );
    expect(fits.ok).toBe(true);
    const multibyte = 'é'.repeat(600 * 1024); // 600 Ki characters, 1.2 MiB of UTF-8
    const tooBig = validateToolCall(
      toolRegistry,
      { name: 'write_file', arguments: JSON.stringify({ path: 'a.txt', content: multibyte }) },
      limits,
    );
    expect(codeOf(tooBig)).toBe(ErrorCodes.TOOL_SEMANTIC);
    const loneSurrogate = validateToolCall(
      toolRegistry,
      { name: 'write_file', arguments: '{"path":"a.txt","content":"\\ud800"}' },
      limits,
    );
    expect(codeOf(loneSurrogate)).toBe(ErrorCodes.TOOL_SEMANTIC);
  });

  it('checks run_code languages and code size against the deployment', () => {
    const pythonOnly: ToolCheckContext = {
      ...HTTP_CONTEXT,
      runCode: { languages: ['python'], maxCodeChars: 10 },
    };
    expect(codeOf(call('run_code', '{"language":"javascript","code":"1"}', pythonOnly))).toBe(
      ErrorCodes.TOOL_LANGUAGE_UNSUPPORTED,
    );
    expect(codeOf(call('run_code', '{"language":"python","code":"result = 12345"}', pythonOnly))).toBe(
      ErrorCodes.TOOL_CODE_TOO_LARGE,
    );
    expect(call('run_code', '{"language":"python","code":"result=1"}', pythonOnly).ok).toBe(true);
    // Not in the schema at all: a schema error, whatever the deployment supports.
    expect(codeOf(call('run_code', '{"language":"ruby","code":"1"}'))).toBe(
      ErrorCodes.TOOL_INVALID_ARGUMENTS,
    );
  });

  it('reports every semantic issue in details and the first one decides the code', () => {
    const result = call(
      'http_request',
      JSON.stringify({
        method: 'GET',
        url: 'https://127.0.0.1/',
        headers: [{ name: 'Host', value: 'x' }],
        body: 'b',
      }),
    );
    expect(codeOf(result)).toBe(ErrorCodes.TOOL_URL_REJECTED);
    const details = !result.ok
      ? (result.error.details as { issues: Array<{ code: string }> })
      : { issues: [] };
    expect(details.issues.map((issue) => issue.code)).toEqual([
      ErrorCodes.TOOL_URL_REJECTED,
      ErrorCodes.TOOL_HEADER_REJECTED,
      ErrorCodes.TOOL_SEMANTIC,
    ]);
  });
});

describe('validateToolArguments (already-parsed arguments)', () => {
  const validate = (name: string, value: unknown) =>
    validateToolArguments(toolRegistry, name, value, DEFAULT_TOOL_CALL_LIMITS, HTTP_CONTEXT);

  it('accepts the same arguments as validateToolCall', () => {
    const result = validate('read_file', { path: './reports//q1.csv' });
    expect(result.ok && result.call.arguments).toEqual({ path: './reports//q1.csv' });
  });

  it('rejects 10,000-deep nesting without recursing', () => {
    let deep: unknown = 1;
    for (let index = 0; index < 10_000; index += 1) deep = [deep];
    expect(codeOf(validate('respond', { answer: deep }))).toBe(ErrorCodes.TOOL_ARGUMENTS_TOO_DEEP);
  });

  it('rejects cyclic and non-JSON values', () => {
    const cyclic: Record<string, unknown> = { answer: 'x' };
    cyclic['self'] = cyclic;
    expect(codeOf(validate('respond', cyclic))).toBe(ErrorCodes.TOOL_ARGUMENTS_TOO_DEEP);
    expect(codeOf(validate('respond', { answer: 'x', when: new Date() }))).toBe(
      ErrorCodes.TOOL_INVALID_ARGUMENTS,
    );
    expect(codeOf(validate('respond', { answer: Number.NaN }))).toBe(ErrorCodes.TOOL_INVALID_ARGUMENTS);
    expect(codeOf(validate('respond', { answer: () => 1 }))).toBe(ErrorCodes.TOOL_INVALID_ARGUMENTS);
  });

  it('measures size on the JSON text', () => {
    const result = validateToolArguments(
      toolRegistry,
      'respond',
      { answer: 'é'.repeat(60) },
      { maxArgumentBytes: 100, maxDepth: 16 },
    );
    expect(codeOf(result)).toBe(ErrorCodes.TOOL_ARGUMENTS_TOO_LARGE);
  });

  it('rejects look-alike names, __proto__ keys, extra properties and semantic problems with their codes', () => {
    expect(codeOf(validate('FS.READ', { path: 'a' }))).toBe(ErrorCodes.TOOL_UNKNOWN_FUNCTION);
    expect(codeOf(validate('read_file', JSON.parse('{"path":"a","__proto__":{"x":1}}')))).toBe(
      ErrorCodes.TOOL_FORBIDDEN_KEY,
    );
    expect(codeOf(validate('read_file', { path: 'a', extra: 1 }))).toBe(ErrorCodes.TOOL_INVALID_ARGUMENTS);
    expect(codeOf(validate('read_file', { path: '%2e%2e/x' }))).toBe(ErrorCodes.TOOL_PATH_REJECTED);
    expect(codeOf(validate('http_request', { method: 'GET', url: 'https://169.254.169.254/' }))).toBe(
      ErrorCodes.TOOL_URL_REJECTED,
    );
  });
});

describe('dropNullProperties', () => {
  it('keeps a __proto__ key as a key instead of replacing the prototype', () => {
    const parsed: unknown = JSON.parse('{"__proto__":{"admin":true},"a":null,"b":[null,{"c":null}]}');
    const out = dropNullProperties(parsed) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(['__proto__', 'b']);
    expect((out as { admin?: unknown }).admin).toBeUndefined();
    expect(out['b']).toEqual([null, {}]);
  });
});
