import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Packing, installing and a full tsc run each take seconds alone and minutes on a busy 2-core
    // machine (CI runs every package's tests at once); this is no performance test.
    testTimeout: 60_000,
    hookTimeout: 300_000,
  },
})
