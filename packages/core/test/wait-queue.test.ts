import { describe, expect, it } from 'vitest'
import { WaitQueue } from '../src/wait-queue.js'

interface Entry {
  readonly name: string
}

describe('WaitQueue', () => {
  it('hands out plain sends and entries oldest first, each with its own size and resolvers, across compactions', () => {
    const q = new WaitQueue<Entry, string, Error>()
    const resolved: string[] = []
    const n = 3_000
    for (let i = 0; i < n; i++) {
      if (i % 7 === 0) q.pushEntry({ name: `entry ${i}` })
      else
        q.pushPlain(
          `text ${i}`,
          i,
          (r) => resolved.push(`${i}:${r}`),
          () => {},
        )
    }
    expect(q.length).toBe(n)
    // Far past the compaction point (1,024 and half the queue), more than once.
    for (let i = 0; i < 2_500; i++) {
      const head = q.head()
      if (i % 7 === 0) expect(head).toEqual({ name: `entry ${i}` })
      else {
        expect(head).toBe(`text ${i}`)
        expect(q.headBytes).toBe(i)
        q.headResolve('ok')
      }
      q.drop()
    }
    expect(q.length).toBe(n - 2_500)
    expect(resolved.at(-1)).toBe('2498:ok') // 2,499 is an entry
    expect(resolved).toHaveLength(2_500 - Math.ceil(2_500 / 7))
  })

  it('drain() gives every waiting entry, and every plain send its reject, in order, and leaves it empty', () => {
    const q = new WaitQueue<Entry, string, Error>()
    const seen: string[] = []
    q.pushPlain(
      'a',
      1,
      () => {},
      (e) => seen.push(`a ${e.message}`),
    )
    q.pushEntry({ name: 'b' })
    q.pushPlain(
      'c',
      1,
      () => {},
      (e) => seen.push(`c ${e.message}`),
    )
    q.drop()
    q.drain((w) => (typeof w === 'function' ? w(new Error('gone')) : seen.push(w.name)))
    expect(seen).toEqual(['b', 'c gone'])
    expect(q.length).toBe(0)
    expect(q.head()).toBeUndefined()
  })
})
