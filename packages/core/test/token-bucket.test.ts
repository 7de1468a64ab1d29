import { afterEach, describe, expect, it, vi } from 'vitest'
import { TokenBucket } from '../src/util.js'

describe('TokenBucket', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('refuses past its burst and refills at its rate from a clock reading the caller passes', () => {
    vi.useFakeTimers({ now: 1_000_000 })
    const bucket = new TokenBucket(10, 3)
    const now = Date.now()
    expect([bucket.take(1, now), bucket.take(1, now), bucket.take(1, now), bucket.take(1, now)]).toEqual([
      true,
      true,
      true,
      false,
    ])
    // 100 ms at 10/s is one token.
    expect(bucket.take(1, now + 100)).toBe(true)
    expect(bucket.take(1, now + 100)).toBe(false)
    // Never more than the burst, however long it rested.
    expect([1, 2, 3, 4].map(() => bucket.take(1, now + 60_000))).toEqual([true, true, true, false])
  })

  it('reads the clock itself when no reading is given', () => {
    vi.useFakeTimers({ now: 1_000_000 })
    const bucket = new TokenBucket(1, 1)
    expect(bucket.take()).toBe(true)
    expect(bucket.take()).toBe(false)
    vi.advanceTimersByTime(1_000)
    expect(bucket.take()).toBe(true)
  })
})
