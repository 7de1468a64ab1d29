import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    testTimeout: 20_000,
    hookTimeout: 20_000,
    projects: [
      {
        extends: true,
        test: { name: 'testing', include: ['test/**/*.test.ts'], exclude: ['test/attacks-*.test.ts'] },
      },
      {
        // The attack tests time a real victim process ("acknowledged within a second"): they run after
        // the rest, one file at a time, so no other test competes for the CPU while they measure.
        extends: true,
        test: {
          name: 'attacks',
          include: ['test/attacks-*.test.ts'],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
})
