import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/index.js';

type LogRecord = Record<string, unknown>;

/** A writable stream that keeps what pino writes, for the `destination` option. */
function memoryStream(): { destination: Writable; records: () => LogRecord[]; text: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  const text = (): string => chunks.join('');
  const records = (): LogRecord[] =>
    text()
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line): LogRecord => {
        const parsed: unknown = JSON.parse(line);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
          throw new Error(`not a log object: ${line}`);
        return Object.fromEntries(Object.entries(parsed));
      });
  return { destination, records, text };
}

/** A nested object field of a log record, or undefined. */
function field(record: LogRecord | undefined, key: string): LogRecord | undefined {
  const value = record?.[key];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return Object.fromEntries(Object.entries(value));
}

const SECRETS = {
  apiKey: 'sk-top-0001',
  authorization: 'Bearer sk-top-0002',
  token: 'tok-0003',
  password: 'pw-0004',
  secret: 'sec-0005',
  headers: { authorization: 'Bearer sk-top-0006' },
  client: { apiKey: 'sk-top-0007', token: 'tok-0008' },
};

const CONTENT = {
  program: 'print("user program")',
  arguments: { answer: 'user answer' },
  prompt: 'user prompt text',
  messages: [{ role: 'user', content: 'hello' }],
  input: { numbers: [1, 2, 3] },
  answer: 'final answer text',
  call: { arguments: '{"language":"python"}', program: 'result = 1', prompt: 'nested prompt' },
};

describe('createLogger', () => {
  it('writes JSON lines with the service name', () => {
    const memory = memoryStream();
    const log = createLogger({ service: 'kit-test', level: 'info', destination: memory.destination });
    log.info({ taskId: 't-1' }, 'hello');
    log.debug('below the level');
    expect(memory.records()).toHaveLength(1);
    expect(memory.records()[0]).toMatchObject({
      service: 'kit-test',
      name: 'kit-test',
      taskId: 't-1',
      msg: 'hello',
      level: 30,
    });
  });

  it.each([false, true])(
    'always redacts apiKey, authorization, token, password and secret (logContent %s)',
    (logContent) => {
      const memory = memoryStream();
      const log = createLogger({
        service: 'kit-test',
        level: 'info',
        logContent,
        destination: memory.destination,
      });
      log.info(SECRETS, 'secrets');
      const [record] = memory.records();
      for (const key of ['apiKey', 'authorization', 'token', 'password', 'secret'])
        expect(record?.[key]).toBe('[redacted]');
      expect(field(record, 'headers')).toEqual({ authorization: '[redacted]' });
      expect(field(record, 'client')).toEqual({ apiKey: '[redacted]', token: '[redacted]' });
      expect(memory.text()).not.toMatch(/sk-top|tok-000|pw-0004|sec-0005/);
    },
  );

  it('redacts programs, arguments, prompts and other content by default, but keeps error codes', () => {
    const memory = memoryStream();
    const log = createLogger({ service: 'kit-test', level: 'info', destination: memory.destination });
    log.info(
      { ...CONTENT, taskId: 't-2', code: 'SANDBOX.TIMEOUT', err: { code: 'TASK.NOT_FOUND' } },
      'content',
    );
    const [record] = memory.records();
    expect(record?.['code']).toBe('SANDBOX.TIMEOUT');
    expect(field(record, 'err')).toEqual({ code: 'TASK.NOT_FOUND' });
    for (const key of ['program', 'arguments', 'prompt', 'messages', 'input', 'answer'])
      expect(record?.[key]).toBe('[redacted]');
    expect(field(record, 'call')).toEqual({
      arguments: '[redacted]',
      program: '[redacted]',
      prompt: '[redacted]',
    });
    expect(record?.['taskId']).toBe('t-2');
    expect(memory.text()).not.toMatch(
      /user program|user answer|user prompt|nested prompt|final answer|result = 1/,
    );
  });

  it('logs content when logContent is on, but still not secrets', () => {
    const memory = memoryStream();
    const log = createLogger({
      service: 'kit-test',
      level: 'info',
      logContent: true,
      destination: memory.destination,
    });
    log.info({ ...CONTENT, apiKey: 'sk-top-0009' }, 'content');
    const [record] = memory.records();
    expect(record?.['program']).toBe(CONTENT.program);
    expect(record?.['prompt']).toBe(CONTENT.prompt);
    expect(record?.['arguments']).toEqual(CONTENT.arguments);
    expect(field(record, 'call')).toEqual(CONTENT.call);
    expect(record?.['apiKey']).toBe('[redacted]');
  });

  it('redacts in child loggers too', () => {
    const memory = memoryStream();
    const log = createLogger({ service: 'kit-test', level: 'info', destination: memory.destination });
    log.child({ consumer: 'c' }).info({ token: 'tok-child', prompt: 'child prompt' }, 'child');
    const [record] = memory.records();
    expect(record).toMatchObject({ consumer: 'c', token: '[redacted]', prompt: '[redacted]' });
  });
});
