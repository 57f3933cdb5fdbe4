// ESLint with typed rules, and an import restriction per folder that enforces the layer
// table in CONVENTIONS.md: a folder imports only from rows below it.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

/** Folders each layer may NOT import from (everything at its own row or above). */
const layers = {
  cli: ['main'],
  commands: ['cli', 'main'],
  watch: ['commands', 'cli', 'runner', 'reporters', 'queue'],
  runner: ['commands', 'cli', 'watch', 'reporters', 'local-backend', 'queue'],
  // The queue's Redis pieces (state store, credit holds): beside the runner, never above it.
  queue: ['commands', 'cli', 'watch', 'runner', 'reporters', 'local-backend'],
  reporters: ['commands', 'cli', 'watch', 'runner', 'local-backend', 'backend'],
  workflow: ['commands', 'cli', 'watch', 'runner', 'reporters', 'plan', 'state', 'backend', 'local-backend'],
  plan: ['commands', 'cli', 'watch', 'runner', 'reporters', 'state', 'backend', 'local-backend'],
  state: ['commands', 'cli', 'watch', 'runner', 'reporters', 'workflow', 'plan', 'backend', 'local-backend'],
  backend: ['commands', 'cli', 'watch', 'runner', 'reporters', 'workflow', 'plan', 'state', 'local-backend'],
  'local-backend': ['commands', 'cli', 'watch', 'runner', 'reporters', 'workflow', 'plan', 'state', 'backend'],
  contract: ['commands', 'cli', 'watch', 'runner', 'reporters', 'workflow', 'plan', 'state', 'backend', 'local-backend', 'core'],
  core: ['commands', 'cli', 'watch', 'runner', 'reporters', 'workflow', 'plan', 'state', 'backend', 'local-backend', 'contract'],
};

const layerRules = Object.entries(layers).map(([folder, forbidden]) => ({
  files: [`src/${folder}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: forbidden.map((f) => ({
          group: [`**/${f}/*`, `**/${f}.js`],
          message: `src/${folder} may not import from src/${f} (see the layer table in CONVENTIONS.md).`,
        })),
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'src/**/generated/**', 'bench/out/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      'no-console': 'error',
      // A switch over a union names every case (or has a default that throws via unreachable).
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
    },
  },
  {
    // The outside world reaches commands through CommandContext, built in main.ts from the process.
    files: ['src/**/*.ts'],
    ignores: ['src/main.ts'],
    rules: {
      'no-restricted-globals': ['error', { name: 'process', message: 'use CommandContext (env, cwd, stdout, signal) from main.ts; see CONVENTIONS.md' }],
    },
  },
  ...layerRules,
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: globals.node, parserOptions: { projectService: false, program: null } },
  },
  {
    // The launcher is CommonJS (bin/package.json): it starts before any ES module machinery.
    files: ['bin/**/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['test/**/*.ts', 'bench/**', 'scripts/**'],
    rules: { 'no-console': 'off', '@typescript-eslint/no-non-null-assertion': 'off', '@typescript-eslint/no-explicit-any': 'off' },
  },
);
