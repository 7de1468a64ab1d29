import { describe, expect, it, onTestFinished } from 'vitest'
import { MissingTable } from '../src/plumtree.js'

function table(maxEntries: number, perNeighbour: number): MissingTable {
  // Deadlines far away: these tests never let an entry expire.
  const t = new MissingTable(maxEntries, perNeighbour, () => undefined)
  onTestFinished(() => t.close())
  return t
}
const later = () => Date.now() + 60_000

describe('the missing table (announced, not received)', () => {
  it('identities taking turns in one neighbour slot hold one share between them, not the table', () => {
    const t = table(8, 2)
    // Each identity creates its share, re-announces the keys of the ones before, then leaves.
    const keys: string[] = []
    for (let turn = 0; turn < 4; turn++) {
      const id = `sybil${turn}`
      for (const k of keys) t.announce(k, id, later())
      for (let j = 0; j < 2; j++) {
        const key = `k${turn}.${j}`
        if (t.announce(key, id, later())) keys.push(key)
      }
      t.leave(id)
    }
    // Gone, each one's entries went with it (the next identity had used its own share up).
    expect(t.size).toBe(0)
    // An honest neighbour's announcement is taken.
    expect(t.announce('real', 'honest', later())).toBe(true)
  })

  it('an entry whose creator left counts against another announcer, which can still ask for it', () => {
    const t = table(8, 2)
    t.announce('k', 'a', later())
    t.announce('k', 'b', later())
    t.announce('only-a', 'a', later())
    t.leave('a')
    expect(t.has('k')).toBe(true)
    expect(t.has('only-a')).toBe(false)
    // b now holds k in its share: one more fits, a third does not.
    expect(t.announce('b1', 'b', later())).toBe(true)
    expect(t.announce('b2', 'b', later())).toBe(false)
  })
})

describe('the missing table, full', () => {
  it('neighbours that filled it with ids that never come make room for an honest announcement', () => {
    const t = table(8, 4)
    for (const evil of ['e1', 'e2']) for (let i = 0; i < 4; i++) t.announce(`${evil}.${i}`, evil, later())
    expect(t.size).toBe(8)
    expect(t.announce('real', 'honest', later())).toBe(true)
    expect(t.has('real')).toBe(true)
    // The oldest of the first largest share went.
    expect(t.has('e1.0')).toBe(false)
    expect(t.size).toBe(8)
  })

  it('room is made only from a share larger than the newcomer’s would be, whoever else announced its entries', () => {
    const t = table(4, 4)
    t.announce('a.0', 'a', later())
    t.announce('a.0', 'b', later())
    t.announce('a.1', 'a', later())
    t.announce('b.0', 'b', later())
    t.announce('b.1', 'b', later())
    // a and b hold 2 each: a newcomer's first entry takes the room of the oldest entry of the first of
    // them, a.0, though b announced it too (neighbours re-announcing each other's ids protect nothing).
    expect(t.announce('c.0', 'c', later())).toBe(true)
    expect(t.has('a.0')).toBe(false)
    // Now a 1, b 2, c 1: c's second entry would make it hold as many as b: refused.
    expect(t.announce('c.1', 'c', later())).toBe(false)
    expect(t.has('b.0')).toBe(true)
    expect(t.size).toBe(4)
  })
})
