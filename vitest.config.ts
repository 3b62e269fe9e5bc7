import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts', 'test/helpers/postgres.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Crash tests start child processes; two cores means two files at a time is plenty.
    maxWorkers: 2,
    // Engines log warnings on stderr by default; tests assert on behaviour, not on log lines.
    env: { PROMISED_LOG_LEVEL: 'silent' },
  },
});
