import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Packing and an offline install take a few seconds each on a 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
})
