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
