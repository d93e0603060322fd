// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '**/generated/**', '**/.turbo/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@tandem/*/src/*', '../../packages/*', '../../../packages/*'],
              message: 'import a package by its name, not its source files',
            },
            {
              group: ['@prisma/client', '@prisma/client/*', '@prisma/adapter-pg', 'kysely', 'pg'],
              message: 'only packages/db talks to the database: call its query functions',
            },
          ],
        },
      ],
    },
  },
  {
    // packages/db is the database layer; test infrastructure administers servers (CREATE DATABASE, a
    // cluster of its own) and tests may inspect tables directly.
    files: [
      'packages/db/**/*.ts',
      'packages/testing/src/**/*.ts',
      'packages/faults/src/**/*.ts',
      '**/test/**/*.ts',
      '**/bench/**/*.ts',
    ],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    // Domain files: pure logic, no I/O of any kind. Every domain/ folder, services' and packages'.
    files: [
      'services/*/src/domain/**/*.ts',
      'services/*/src/**/domain/**/*.ts',
      'packages/*/src/**/domain/**/*.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '@nats-io/*',
                '@prisma/*',
                'fastify',
                'fastify/*',
                '@tandem/db',
                '@tandem/bus',
                '@tandem/service-kit',
                'kysely',
                'pg',
                'openai',
                'pino',
                'undici',
                'node:fs',
                'node:fs/*',
                'node:child_process',
                'node:net',
                'node:dgram',
                'node:dns',
                'node:dns/*',
                'node:http',
                'node:https',
                'node:http2',
                'node:worker_threads',
                'fs',
                'fs/*',
                'child_process',
                'net',
                'http',
                'https',
              ],
              message: 'domain files do no I/O: take what they need as arguments and return decisions',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'fetch', message: 'domain files do no I/O' },
        { name: 'process', message: 'domain files read no environment and touch no process' },
      ],
    },
  },
  {
    // The sandbox drives processes but never the database or the bus.
    files: ['services/*/src/sandbox/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@nats-io/*', '@prisma/*', 'fastify', '@tandem/db', '@tandem/bus'],
              message: 'domain files do not import nats, prisma or fastify',
            },
          ],
        },
      ],
    },
  },
);
