import { defineConfig } from 'vitest/config';

/**
 * Vitest runs only the suites written for it (`test/**\/*.vitest.ts`, e.g. the official Keyv
 * adapter suite); the rest of test/ is node:test, compiled by tsc and run from dist/.
 */
export default defineConfig({
  test: {
    include: ['test/**/*.vitest.ts'],
    exclude: ['**/node_modules/**', 'dist/**'],
  },
});
