import { describe, expect, it } from 'vitest'
import { PendingQueue } from '../src/pending-queue.js'

const item = (seq: number) => ({ seq })
const seqs = (q: PendingQueue<{ seq: number }>) => [...q.values()].map((p) => p.seq)

describe('PendingQueue', () => {
  it('keeps entries in seq order, finds them by seq, and removes from anywhere', () => {
    const q = new PendingQueue<{ seq: number }>()
    for (let s = 5; s <= 9; s++) q.push(item(s))
    expect(q.get(7)).toEqual({ seq: 7 })
    expect(q.get(4)).toBeUndefined()
    expect(q.get(10)).toBeUndefined()
    expect(q.delete(7)).toBe(true)
    expect(q.delete(7)).toBe(false)
    expect(q.delete(5)).toBe(true)
    expect(q.first()).toEqual({ seq: 6 })
    expect(q.size).toBe(3)
    expect(seqs(q)).toEqual([6, 8, 9])
  })

  it('allows deleting while iterating, and skips gaps in the seqs', () => {
    const q = new PendingQueue<{ seq: number }>()
    for (const s of [1, 2, 4, 5, 9]) q.push(item(s))
    const seen: number[] = []
    for (const p of q.values()) {
      seen.push(p.seq)
      q.delete(p.seq)
      if (p.seq === 2) q.delete(5)
    }
    expect(seen).toEqual([1, 2, 4, 9])
    expect(q.size).toBe(0)
    expect(q.first()).toBeUndefined()
  })

  it('refuses a seq that is not above the last one', () => {
    const q = new PendingQueue<{ seq: number }>()
    q.push(item(3))
    expect(() => q.push(item(3))).toThrow(RangeError)
  })

  it('stays correct over many entries settled from the front (compaction)', () => {
    const q = new PendingQueue<{ seq: number }>()
    let next = 1
    let low = 1
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 100; i++) q.push(item(next++))
      for (let i = 0; i < 90; i++) expect(q.delete(low++)).toBe(true)
    }
    expect(q.size).toBe(next - low)
    expect(q.first()).toEqual({ seq: low })
    expect(q.get(next - 1)).toEqual({ seq: next - 1 })
    expect(seqs(q)).toEqual(Array.from({ length: next - low }, (_, i) => low + i))
  })
})
