import { afterEach, describe, expect, it, vi } from 'vitest'
import { coarseNow } from '../src/util.js'

/** The next event-loop turn: every microtask of this one has run. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

describe('coarseNow', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('reads the clock once for a run of synchronous code, and afresh in the next one', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_000 })
    await nextTurn()
    expect(coarseNow()).toBe(1_000)
    vi.setSystemTime(5_000)
    // The same run: a burst of sends shares the first reading.
    expect(coarseNow()).toBe(1_000)
    await nextTurn()
    expect(coarseNow()).toBe(5_000)
  })

  it('is fresh again once the microtasks queued before its reading have run', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_000 })
    await nextTurn()
    const seen: number[] = []
    const before = Promise.resolve().then(() => seen.push(coarseNow()))
    seen.push(coarseNow())
    vi.setSystemTime(2_000)
    // A reaction queued before the reading shares it; code that runs after that reaction's turn does not.
    await before
    seen.push(coarseNow())
    expect(seen).toEqual([1_000, 1_000, 2_000])
  })
})
