import { describe, expect, it } from 'vitest'
import { runSoak } from '../soak/soak.mjs'

// The short soak: real TCP between separate OS processes (each a full peer, forked with --expose-gc).
// Every send must be acknowledged and delivered exactly once, and the long-lived observer's heap after
// GC must not grow with the message count. The long version is `pnpm soak` (soak/run.mjs).

describe('soak over TCP between processes (short)', () => {
  it('5 processes × 100 messages: zero unacknowledged losses, no duplicates, bounded observer memory', async () => {
    const result = await runSoak({ processes: 5, messages: 100, timeoutMs: 18_000 })
    const where = `(seed ${result.seed})`
    expect(result.failed, `failed sends ${where}`).toEqual({})
    expect(result.acked, where).toBe(500)
    expect(result.received, `delivered ${where}`).toBe(500)
    expect(result.duplicates, where).toBe(0)
    expect(result.disconnects, where).toBe(0)
    expect(result.minConnected, where).toBe(4)
    const [before, after] = result.observer.heapUsedAtCheckpoints
    // Generous: the dedup window (4,096 ids) is still filling here; a per-message leak of even a few
    // hundred bytes shows up in the long soak, where the window is full before the first checkpoint.
    expect(after - before, `observer heap growth ${where}`).toBeLessThan(2 * 1_048_576)
  }, 20_000)
})
