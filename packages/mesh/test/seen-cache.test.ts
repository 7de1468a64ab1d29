import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SeenCache } from '../src/plumtree.js'

describe('seen-cache', () => {
  it('keeps the keys sent latest, and its horizon is the latest send time it forgot', () => {
    const sends = fc.array(fc.tuple(fc.string({ maxLength: 3 }), fc.integer({ min: 0, max: 1_000 })), {
      maxLength: 200,
    })
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16 }), sends, (capacity, entries) => {
        const cache = new SeenCache(capacity)
        const kept = new Map<string, number>()
        let horizon = Number.NEGATIVE_INFINITY
        for (const [key, sentAt] of entries) {
          cache.add(key, sentAt)
          if (kept.has(key)) continue
          kept.set(key, sentAt)
          if (kept.size <= capacity) continue
          // Forget one with the earliest send time (any of them, on a tie).
          const earliest = Math.min(...kept.values())
          horizon = Math.max(horizon, earliest)
          const forgotten = [...kept].find(([k, t]) => t === earliest && !cache.has(k))
          expect(forgotten).toBeDefined()
          kept.delete(forgotten![0])
        }
        expect(cache.size).toBe(kept.size)
        for (const key of kept.keys()) expect(cache.has(key)).toBe(true)
        expect(cache.horizon).toBe(horizon)
      }),
      { numRuns: 300 },
    )
  })
})
