import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MessageStore } from '../src/plumtree.js'

const KiB = 1024

describe('message store (answers GRAFTs)', () => {
  it('never holds more messages or bytes than its bounds, whatever the sources', () => {
    const puts = fc.array(fc.tuple(fc.constantFrom('', 'a', 'b', 'c'), fc.integer({ min: 0, max: 300 })), {
      maxLength: 300,
    })
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 2_000 }),
        puts,
        (count, bytes, list) => {
          const store = new MessageStore(count, bytes, 60_000)
          let total = 0
          const kept = new Map<string, number>()
          list.forEach(([source, size], i) => {
            store.put(`k${i}`, new Uint8Array(size), 0, source)
            if (size <= bytes) kept.set(`k${i}`, size)
          })
          for (const [key, size] of kept) if (store.get(key, 0)) total += size
          expect(store.size).toBeLessThanOrEqual(count)
          expect(total).toBeLessThanOrEqual(bytes)
        },
      ),
    )
  })

  it("one session's flood of large messages from fresh origins evicts its own, not the others'", () => {
    const store = new MessageStore(1_024, 4 * KiB * KiB, 60_000)
    for (let i = 0; i < 5; i++) store.put(`honest${i}`, new Uint8Array(300), 0, 'origin-link')
    store.put('mine', new Uint8Array(300), 0, '')
    for (let i = 0; i < 1_100; i++) store.put(`junk${i}`, new Uint8Array(16 * KiB), 1, 'attacker')
    for (let i = 0; i < 5; i++) expect(store.get(`honest${i}`, 1)).toBeDefined()
    expect(store.get('mine', 1)).toBeDefined()
    expect(store.get('junk0', 1)).toBeUndefined()
    expect(store.get('junk1099', 1)).toBeDefined()
  })

  it('by count too: a session sending many small messages makes room from its own', () => {
    const store = new MessageStore(100, 4 * KiB * KiB, 60_000)
    for (let i = 0; i < 10; i++) store.put(`honest${i}`, new Uint8Array(50), 0, 'a')
    for (let i = 0; i < 1_000; i++) store.put(`junk${i}`, new Uint8Array(50), 0, 'attacker')
    expect(store.size).toBe(100)
    for (let i = 0; i < 10; i++) expect(store.get(`honest${i}`, 0)).toBeDefined()
  })

  it('a message is forgotten once older than the ttl', () => {
    const store = new MessageStore(10, KiB, 60_000)
    store.put('old', new Uint8Array(10), 0, 'a')
    store.put('new', new Uint8Array(10), 30_000, 'b')
    expect(store.get('old', 60_000)).toBeDefined()
    expect(store.get('old', 60_001)).toBeUndefined()
    expect(store.get('new', 60_001)).toBeDefined()
    expect(store.size).toBe(1)
  })
})
