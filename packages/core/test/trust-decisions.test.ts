import type { PeerAnnouncement } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { type KnownPeers, memoryKnownPeers } from '../src/known-peers.js'
import type { PeerError } from '../src/peer-errors.js'
import type { KeyChange } from '../src/peer-types.js'
import { Trust } from '../src/trust.js'

// The trust decisions one by one, on the Trust object itself (the peer-level scenarios are in
// trust.test.ts). Written for the mutants that survived them: docs/MUTATION.md.

const key = (n: number) => n.toString(16).padStart(64, '0')
const OLD = key(1)
const NEW = key(2)

function announcement(peerId: string, name: string, listenAddrs: string[] = []): PeerAnnouncement {
  return { version: 3, peerId, name, listenAddrs, capabilities: [] }
}

/** A store that counts writes and can be made to fail them. */
function countingStore(base: KnownPeers = memoryKnownPeers()) {
  const store = {
    writes: 0,
    failWith: undefined as Error | undefined,
    check: base.check.bind(base),
    entries: base.entries.bind(base),
    async remember(address: string, peerId: string, name: string) {
      store.writes++
      if (store.failWith) throw store.failWith
      await base.remember(address, peerId, name)
    },
  }
  return store
}

function trust(onKeyChange?: (change: KeyChange) => boolean | Promise<boolean>) {
  const known = countingStore()
  const reported: PeerError[] = []
  return { known, reported, trust: new Trust(known, onKeyChange, (err) => reported.push(err)) }
}

/** Lets the fire-and-forget save settle. */
const settled = () => new Promise((resolve) => setImmediate(resolve))

describe('Trust.checkDialed', () => {
  it('asks onKeyChange, with the saved name, and an accepted change replaces the saved key', async () => {
    const asked: KeyChange[] = []
    const { trust: t, known } = trust((change) => {
      asked.push(change)
      return true
    })
    await known.remember('bob:1', OLD, 'bob')
    await t.checkDialed('bob:1', announcement(NEW, 'someone'))
    expect(asked).toEqual([{ address: 'bob:1', name: 'bob', expected: OLD, actual: NEW }])
    await settled()
    expect(known.check('bob:1', NEW)).toEqual({ status: 'match' })
    expect(t.pending()).toEqual([])
  })

  it('names the change after the announcement when the saved entry has no name', async () => {
    const asked: KeyChange[] = []
    const { trust: t, known } = trust((change) => {
      asked.push(change)
      return false
    })
    await known.remember('bob:1', OLD, '')
    await expect(t.checkDialed('bob:1', announcement(NEW, 'mallory'))).rejects.toMatchObject({
      code: 'KEY_CHANGED',
    })
    expect(asked.map((c) => c.name)).toEqual(['mallory'])
  })

  it('refuses a change nobody accepted (no callback, or one that says no) and keeps it for the user', async () => {
    for (const onKeyChange of [undefined, () => false, async () => false]) {
      const { trust: t, known } = trust(onKeyChange)
      await known.remember('bob:1', OLD, 'bob')
      await expect(t.checkDialed('bob:1', announcement(NEW, 'bob'))).rejects.toMatchObject({
        code: 'KEY_CHANGED',
      })
      expect(t.pending()).toEqual([
        expect.objectContaining({
          address: 'bob:1',
          name: 'bob',
          expected: OLD,
          actual: NEW,
          direction: 'outbound',
        }),
      ])
      expect(known.check('bob:1', OLD)).toEqual({ status: 'match' })
    }
  })

  it('saves a new address once, and writes nothing for one that matches', async () => {
    const { trust: t, known } = trust()
    await t.checkDialed('bob:1', announcement(OLD, 'bob'))
    await settled()
    expect(known.writes).toBe(1)
    expect(known.entries()).toEqual([{ address: 'bob:1', peerId: OLD, name: 'bob' }])
    await t.checkDialed('bob:1', announcement(OLD, 'bob'))
    await settled()
    expect(known.writes).toBe(1)
  })

  it('reports a failed save as KNOWN_PEERS_WRITE_FAILED, with the cause, and still lets the dial through', async () => {
    const { trust: t, known, reported } = trust()
    const cause = new Error('disk full')
    known.failWith = cause
    await t.checkDialed('bob:1', announcement(OLD, 'bob'))
    await settled()
    expect(reported).toHaveLength(1)
    expect(reported[0]).toMatchObject({ code: 'KNOWN_PEERS_WRITE_FAILED', cause })
  })
})

describe('Trust.checkInbound', () => {
  it('records a claimed saved address as an inbound change and reports it', async () => {
    const { trust: t, known, reported } = trust()
    await known.remember('bob:1', OLD, '')
    t.checkInbound(announcement(NEW, 'mallory', ['bob:1', 'mallory:1']))
    expect(t.pending()).toEqual([
      expect.objectContaining({
        address: 'bob:1',
        name: 'mallory',
        expected: OLD,
        actual: NEW,
        direction: 'inbound',
      }),
    ])
    expect(reported.map((e) => e.code)).toEqual(['KEY_CHANGED'])
  })

  it('keeps at most 64 changes for the user, forgetting the oldest', async () => {
    const { trust: t, known } = trust()
    for (let i = 0; i < 65; i++) await known.remember(`h${i}:1`, OLD, 'bob')
    for (let i = 0; i < 64; i++) t.checkInbound(announcement(NEW, 'x', [`h${i}:1`]))
    expect(t.pending()).toHaveLength(64)
    t.checkInbound(announcement(NEW, 'x', ['h64:1']))
    const addresses = t.pending().map((c) => c.address)
    expect(addresses).toHaveLength(64)
    expect(addresses).not.toContain('h0:1')
    expect(addresses[63]).toBe('h64:1')
  })
})

describe('Trust.nameOwner and accept', () => {
  it('gives the key of a name only when every saved entry with that name has the same key', async () => {
    const { trust: t, known } = trust()
    expect(t.nameOwner('')).toBeUndefined()
    await known.remember('a:1', OLD, 'bob')
    await known.remember('a:2', OLD, 'bob')
    expect(t.nameOwner('bob')).toBe(OLD)
    await known.remember('a:3', NEW, 'bob')
    expect(t.nameOwner('bob')).toBeUndefined()
  })

  it('refuses to accept where no change waits, and accepts a given key where none did', async () => {
    const { trust: t, known } = trust()
    await expect(t.accept('nobody:1')).rejects.toMatchObject({ code: 'UNKNOWN_PEER' })
    await expect(t.accept('nobody:1', 'not-a-key')).rejects.toMatchObject({ code: 'UNKNOWN_PEER' })
    await expect(t.accept('bob:1', NEW)).resolves.toEqual({
      address: 'bob:1',
      name: '',
      expected: '',
      actual: NEW,
    })
    expect(known.check('bob:1', NEW)).toEqual({ status: 'match' })
  })

  it('a claim from a peer dialing in never replaces a change a dial verified: accepting the address takes the verified key', async () => {
    const { trust: t, known } = trust()
    await known.remember('alice:1', OLD, 'alice')
    // Our dial of alice's address reached her new key.
    await expect(t.checkDialed('alice:1', announcement(NEW, 'alice'))).rejects.toMatchObject({
      code: 'KEY_CHANGED',
    })
    // Then a stranger dials in claiming that address.
    const STRANGER = key(3)
    t.checkInbound(announcement(STRANGER, 'alice', ['alice:1']))
    expect(t.pending().map((c) => [c.actual, c.direction])).toEqual([[NEW, 'outbound']])
    await expect(t.accept('alice:1')).resolves.toMatchObject({ actual: NEW })
    expect(known.check('alice:1', NEW)).toEqual({ status: 'match' })
  })

  it("a steered dial does not give a saved address another key's name; the user's own dial does", async () => {
    const known = countingStore()
    const FIRST = key(3)
    const t = new Trust(
      known,
      undefined,
      () => {},
      (name, peerId) => name === 'alice' && peerId !== FIRST,
    )
    // A peer-exchange record led our dial to a key calling itself alice; the alice we know is FIRST.
    await t.checkDialed('m:1', announcement(NEW, 'alice'), true)
    expect(known.entries()).toEqual([{ address: 'm:1', peerId: NEW, name: '' }])
    expect(t.nameOwner('alice')).toBeUndefined()
    // Saved names count too: bob is OLD's.
    await known.remember('b:1', OLD, 'bob')
    await t.checkDialed('m:2', announcement(NEW, 'bob'), true)
    expect(known.entries().find((e) => e.address === 'm:2')?.name).toBe('')
    expect(t.nameOwner('bob')).toBe(OLD)
    // The user dialed this address: the name it answers with is saved.
    await t.checkDialed('a:1', announcement(FIRST, 'alice'))
    expect(t.nameOwner('alice')).toBe(FIRST)
  })

  it('a key change accepted on a dial keeps the name saved at that address', async () => {
    const known = countingStore()
    const t = new Trust(
      known,
      () => true,
      () => {},
    )
    await known.remember('bob:1', OLD, 'bob')
    await t.checkDialed('bob:1', announcement(NEW, 'bob'), true)
    expect(known.entries()).toEqual([{ address: 'bob:1', peerId: NEW, name: 'bob' }])
    expect(t.nameOwner('bob')).toBe(NEW)
  })
})
