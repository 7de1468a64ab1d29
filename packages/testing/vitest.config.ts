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
        // The attack tests run a real victim process and its attackers: they run after the rest, one file
        // at a time, so their victims do not compete with each other for the machine's two cores.
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
