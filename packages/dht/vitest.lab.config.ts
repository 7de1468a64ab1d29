import { defineConfig } from 'vitest/config'

// The NAT lab (lab/*.test.ts): run as root in the root namespace, which it never sends from — every
// peer and DHT node runs inside the lab's own network namespaces. Without root its tests are skipped
// with the reason. One file, tests one after another: each builds and removes its own lab.
export default defineConfig({
  test: {
    include: ['lab/**/*.test.ts'],
    testTimeout: 150_000,
    hookTimeout: 30_000,
    fileParallelism: false,
  },
})
