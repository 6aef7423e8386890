// ESLint 9 flat config.
// - TypeScript (src, test, scripts, bench): typescript-eslint recommended, plus type-aware
//   no-floating-promises / no-misused-promises (parserOptions.projectService).
// - Workflow sandbox code (src/workflows, src/shared): no Node built-ins and no I/O
//   libraries. Workflows may import @temporalio/workflow (and @temporalio/common), their
//   own folder and src/shared; anything else only as `import type` (erased at build).
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import globals from 'globals';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

const nodeBuiltins = builtinModules.filter((name) => !name.startsWith('_'));

const ioLibraries = [
  'pg',
  'kysely',
  'nats',
  'express',
  'pino',
  'prom-client',
  'rate-limiter-flexible',
  '@temporalio/client',
  '@temporalio/worker',
  '@temporalio/activity',
  '@temporalio/testing',
];

/** Options of no-restricted-imports for code that enters the workflow bundle. */
function sandboxImportRules(relativeMessage, relativeGroup) {
  return {
    paths: [
      ...nodeBuiltins.map((name) => ({
        name,
        message: 'Node built-ins are not available in the workflow sandbox (and break determinism).',
        allowTypeImports: true,
      })),
      ...ioLibraries.map((name) => ({
        name,
        message: 'I/O belongs in activities; workflows import only @temporalio/workflow and src/shared.',
        allowTypeImports: true,
      })),
    ],
    patterns: [
      {
        group: ['node:*'],
        message: 'Node built-ins are not available in the workflow sandbox (and break determinism).',
        allowTypeImports: true,
      },
      {
        group: ['@temporalio/client/*', '@temporalio/worker/*', '@temporalio/activity/*', 'pg/*', 'kysely/*', 'nats/*', 'express/*'],
        message: 'I/O belongs in activities; workflows import only @temporalio/workflow and src/shared.',
        allowTypeImports: true,
      },
      { group: relativeGroup, message: relativeMessage, allowTypeImports: true },
    ],
  };
}

export default defineConfig(
  {
    // src/client/schema.d.ts is written by `npm run client:generate` (openapi-typescript), not by hand;
    // packages/*/dist by `npm run build:packages` (the CLI's bundle holds its npm dependencies).
    ignores: ['node_modules/', 'dist/', 'packages/*/dist/', 'coverage/', '.data/', '.venv/', '.test-data/', 'bench/results/', 'src/client/schema.d.ts'],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mts', '**/*.cts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: { ...globals.node },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Tests read JSON answers of arbitrary shape; typing every body would add nothing.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { ...globals.node } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { sourceType: 'module', globals: { ...globals.node } },
  },
  {
    files: ['test/**/*.ts'],
    languageOptions: { globals: { ...globals.jest } },
  },
  {
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        sandboxImportRules('Workflows import only their own folder and src/shared at run time; use `import type` for activities.', [
          '../*',
          '!../shared',
          '!../shared/**',
        ]),
      ],
    },
  },
  {
    // Frozen earlier versions of workflows, one folder further down.
    files: ['src/workflows/legacy/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        sandboxImportRules('Workflows import only their own folder and src/shared at run time; use `import type` for activities.', [
          '../../*',
          '!../../shared',
          '!../../shared/**',
        ]),
      ],
    },
  },
  {
    files: ['src/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        sandboxImportRules('src/shared is imported by workflows: it may import nothing outside itself at run time.', ['../*', '../../*']),
      ],
    },
  },
);
