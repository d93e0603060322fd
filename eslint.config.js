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
              group: ['@prisma/client', '@prisma/client/*', '@prisma/adapter-pg'],
              message: 'only packages/db imports the Prisma client',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['packages/db/**/*.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    // Domain files: pure logic, no I/O frameworks.
    files: ['services/*/src/domain/**/*.ts', 'services/*/src/sandbox/**/*.ts'],
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
