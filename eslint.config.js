// Lint rules for the library and the command (`npm run lint`), with type information: the
// rules that matter here (a promise nobody awaits, an import kept only for its types) need it.
// Formatting is not linted. Layer rules live in .dependency-cruiser.cjs.
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/**', 'node_modules/**', 'bench/peers/**', 'src/dashboard/static/**'] },
  {
    files: ['src/**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A promise that is neither awaited nor handed on loses its rejection: a background loop
      // must report errors on the engine's emitter, or mark the promise `void` on purpose.
      '@typescript-eslint/no-floating-promises': 'error',
      // Promise-returning functions where a void callback is expected (event listeners, timers).
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // With verbatimModuleSyntax an import used only as a type must say so, or it is loaded.
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-import-type-side-effects': 'error',
      // Library code logs through pino only; the CLI writes through its output module.
      'no-console': 'error',
      // Small modules cut by concept, functions that fit on a screen (declarative tables aside).
      'max-lines': ['error', { max: 400 }],
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: false, skipComments: false }],
    },
  },
);
