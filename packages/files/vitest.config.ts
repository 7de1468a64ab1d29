import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // The memory test measures live memory after a collection.
    execArgv: ['--expose-gc'],
  },
})
