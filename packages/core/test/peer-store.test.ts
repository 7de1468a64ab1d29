import type { PeerRecord } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { connectToActive } from '../src/connect-to-active.js'
import { resolveLimits } from '../src/limits.js'
import { PeerError } from '../src/peer-errors.js'
import { PeerStore, reachableFirst } from '../src/peer-store.js'
import type { PeerInit } from '../src/peer-types.js'
import { memoryNetwork, memoryTransport } from '../src/transports/memory.js'
import { memoryPeer } from './fixtures/memory-peer.js'

const id = (n: number) => n.toString(16).padStart(64, '0')
const record = (n: number, over: Partial<PeerRecord> = {}): PeerRecord => ({
  peerId: id(n),
  name: `peer-${n}`,
  addrs: [`10.0.0.${n}:4000`],
  lastSeen: 1,
  ...over,
})
const none = () => false

function store(over: Partial<ConstructorParameters<typeof PeerStore>[0]> = {}) {
  return new PeerStore({
    selfId: id(0),
    maxEntries: 100,
    maxPerSource: 4,
    hearsayTtl: 60_000,
    goneTtl: 10_000,
    ...over,
  })
}

describe('peer store', () => {
  it('never lets hearsay rename or re-address a peer known first-hand', () => {
    const s = store()
    s.learnDirect(id(1), 'bob', ['127.0.0.1:4000'])
    expect(s.learnHearsay(id(9), record(1, { name: 'mallory', addrs: ['6.6.6.6:1'] }), none)).toBeUndefined()
    expect(s.get(id(1))).toMatchObject({ name: 'bob', addrs: ['127.0.0.1:4000'], source: 'direct' })
  })

  it('clamps a remote lastSeen in the future to our clock', () => {
    const s = store()
    const before = Date.now()
    s.learnHearsay(id(9), record(2, { lastSeen: 2 ** 53 - 1 }), none)
    expect(s.get(id(2))!.lastSeen).toBeLessThanOrEqual(Date.now())
    expect(s.get(id(2))!.lastSeen).toBeGreaterThanOrEqual(before)
  })

  it('lets one source place only maxPerSource entries; another source is unaffected', () => {
    const s = store()
    const placed = Array.from({ length: 10 }, (_, i) => s.learnHearsay(id(9), record(10 + i), none)).filter(
      Boolean,
    )
    expect(placed).toHaveLength(4)
    expect(s.learnHearsay(id(8), record(50), none)).toBeDefined()
  })

  it('ignores records about ourselves, about the source itself, and without addresses', () => {
    const s = store()
    expect(s.learnHearsay(id(9), record(0), none)).toBeUndefined()
    expect(s.learnHearsay(id(9), record(9), none)).toBeUndefined()
    expect(s.learnHearsay(id(9), record(3, { addrs: [] }), none)).toBeUndefined()
    expect(s.size).toBe(0)
  })

  it('forgets unconfirmed hearsay, strangers that connected once, and peers that left, but never a connected one', () => {
    const s = store()
    s.learnHearsay(id(9), record(2), none)
    s.learnDirect(id(3), 'left', ['x:1'], { dialled: true })
    s.markGone(id(3))
    s.learnDirect(id(4), 'dialled', ['y:1'], { dialled: true })
    s.learnDirect(id(5), 'connected-in', ['z:1'], { host: 'z' })
    const later = Date.now() + 120_000
    s.expire(later, (peer) => peer === id(2) || peer === id(5))
    expect(s.get(id(2))).toBeDefined()
    expect(s.get(id(3))).toBeUndefined()
    expect(s.get(id(4))).toBeDefined()
    expect(s.get(id(5))).toBeDefined()
    s.expire(later, none)
    expect(s.get(id(2))).toBeUndefined()
    expect(s.get(id(5))).toBeUndefined()
    expect(s.get(id(4))).toBeDefined()
  })

  it('when full, forgets hearsay before first-hand entries, and hearsay never pushes out first-hand', () => {
    const s = store({ maxEntries: 2, maxPerSource: 10 })
    s.learnDirect(id(1), 'a', ['a:1'])
    s.learnHearsay(id(9), record(2), none)
    s.learnDirect(id(3), 'c', ['c:1'])
    expect(s.get(id(2))).toBeUndefined()
    expect(s.learnHearsay(id(9), record(4), none)).toBeUndefined()
    expect([...s.values()].map((e) => e.id).sort()).toEqual([id(1), id(3)])
  })

  it('hands out a bounded sample, the peers we dialled first, without peers that left', () => {
    const s = store({ maxPerSource: 50 })
    for (let i = 1; i <= 20; i++) s.learnHearsay(id(99), record(i), none)
    s.learnDirect(id(30), 'direct', ['d:1'], { dialled: true })
    s.learnDirect(id(31), 'gone', ['g:1'])
    s.markGone(id(31))
    const sample = s.sample(id(5), 5, 10_000, (e) => e.lastSeen)
    expect(sample).toHaveLength(5)
    expect(sample[0]!.peerId).toBe(id(30))
    expect(sample.map((r) => r.peerId)).not.toContain(id(31))
    expect(sample.map((r) => r.peerId)).not.toContain(id(5))
    expect(s.sample(id(5), 100, 200, (e) => e.lastSeen).length).toBeLessThan(5)
  })
})

describe('peer store against throwaway identities', () => {
  it('a stranger connecting in never pushes out a peer we dialled or one connected now; it is not stored instead', () => {
    const s = store({ maxEntries: 3 })
    const connected = (peer: string) => peer === id(2)
    s.learnDirect(id(1), 'dialled', ['10.0.0.1:4000'], { dialled: true })
    s.learnDirect(id(2), 'connected-in', ['10.0.0.2:4000'])
    s.learnDirect(id(3), 'old-stranger', ['10.0.0.3:4000'])
    // Full: a fresh inbound key takes the place of the other stranger, the one not connected.
    expect(s.learnDirect(id(4), 'sybil-1', [], { connected })).toBe(true)
    expect(s.get(id(3))).toBeUndefined()
    // Only the dialled and the connected peer are left besides it, then only the sybils replace each other.
    for (let n = 5; n < 50; n++) s.learnDirect(id(n), `sybil-${n}`, [], { connected })
    expect(s.get(id(1))?.name).toBe('dialled')
    expect(s.get(id(2))?.name).toBe('connected-in')
    expect(s.size).toBe(3)
    // With every entry dialled or connected, a stranger is not stored at all.
    const full = store({ maxEntries: 2 })
    full.learnDirect(id(1), 'a', [], { dialled: true })
    full.learnDirect(id(2), 'b', [], { dialled: true })
    expect(full.learnDirect(id(3), 'sybil', [], { connected })).toBe(false)
    expect([...full.values()].map((e) => e.name)).toEqual(['a', 'b'])
    // A peer we dial may still make room, from the least valuable entries.
    expect(full.learnDirect(id(4), 'dialled-later', [], { dialled: true, connected })).toBe(true)
  })

  it('a peer keeps knowing the peers it dialled while throwaway identities connect to it', async () => {
    const network = memoryNetwork()
    const make = (name: string, init: Partial<PeerInit> = {}) => memoryPeer(network, name, init)
    const victim = make('victim', { maxKnownPeers: 4 })
    const friends = [make('friend-a'), make('friend-b')]
    for (const p of [victim, ...friends]) await p.start()
    for (const f of friends) {
      const info = await victim.connect(f.addresses[0]!)
      await victim.disconnect(info.id)
    }
    for (let n = 0; n < 8; n++) {
      const sybil = make(`sybil-${n}`)
      await sybil.start()
      await sybil.connect(victim.addresses[0]!)
      await sybil.stop()
    }
    const known = victim.peers().known.map((k) => k.name)
    expect(known).toEqual(expect.arrayContaining(['friend-a', 'friend-b']))
    // It can still reach a friend by its id alone, through what it knows.
    await expect(victim.send(friends[0]!.id, 'still there?')).resolves.toMatchObject({
      peerId: friends[0]!.id,
    })
  })
})

describe('addresses a peer claims for itself', () => {
  const claims = Array.from({ length: 16 }, (_, i) => `198.51.100.${i + 1}:4000`)

  it('are kept only on the host the peer was reached at, the address dialed first, and its own dht: address', () => {
    const own = '203.0.113.7:4000'
    const dht = `dht:${id(7)}`
    expect(
      reachableFirst([...claims.slice(0, 3), own, `dht:${id(8)}`, dht], undefined, '203.0.113.7', id(7)),
    ).toEqual([own, dht])
    expect(
      reachableFirst([own, ...claims.slice(0, 2), '192.0.2.1:4001'], '192.0.2.1:9000', '192.0.2.1'),
    ).toEqual(['192.0.2.1:9000', '192.0.2.1:4001'])
    // The same host, however the connection spells it.
    expect(reachableFirst([own, '[2001:db8::7]:4000'], undefined, '::ffff:203.0.113.7')).toEqual([own])
    expect(reachableFirst([own, '[2001:db8::7]:4000'], undefined, '2001:0db8:0:0::7')).toEqual([
      '[2001:db8::7]:4000',
    ])
  })

  it('cannot make connect-to-active dial more than two of them, first-hand or not', async () => {
    const s = store()
    const onHost = (host: string) => Array.from({ length: 16 }, (_, i) => `${host}:${4000 + i}`)
    // A stranger connected in from 203.0.113.7, claiming sixteen addresses there and sixteen elsewhere.
    s.learnDirect(
      id(1),
      'stranger',
      reachableFirst([...claims, ...onHost('203.0.113.7')], undefined, '203.0.113.7'),
      {
        host: '203.0.113.7',
      },
    )
    s.learnDirect(
      id(2),
      'dialled',
      reachableFirst([...claims, ...onHost('203.0.113.8')], '203.0.113.8:9000', '203.0.113.8'),
      {
        dialled: true,
      },
    )
    const dialed = await dialsOf(s)
    expect(dialed.get(id(1))).toEqual(['203.0.113.7:4000', '203.0.113.7:4001'])
    expect(dialed.get(id(2))).toEqual(['203.0.113.8:9000', '203.0.113.8:4000'])
  })
})

describe('whom connect-to-active dials', () => {
  it('gives throwaway keys connecting from one network group one turn per round, not the most dials', async () => {
    const s = store({ maxPerSource: 32 })
    // Twenty honest peers an introducer told us about; forty keys that connected in from one host.
    for (let n = 1; n <= 20; n++) s.learnHearsay(id(999), record(n), none)
    for (let n = 100; n < 140; n++)
      s.learnDirect(id(n), `sybil-${n}`, [`198.51.100.9:${n}`], { host: '198.51.100.9' })
    // The group holds its share of the store, the newest of them.
    expect([...s.values()].filter((e) => e.name.startsWith('sybil')).length).toBe(32)
    expect(s.get(id(139))).toBeDefined()
    const dialed = await dialsOf(s, 32)
    const honest = [...dialed.keys()].filter((peer) => !s.get(peer)!.name.startsWith('sybil'))
    expect(dialed.size).toBe(32)
    expect(honest).toHaveLength(16)
  })

  it("hearsay that connects in joins its group within the group's share", () => {
    const s = store({ maxPerSource: 2 })
    for (let n = 1; n <= 2; n++) s.learnHearsay(id(99), record(n), none)
    for (let n = 10; n < 14; n++) s.learnDirect(id(n), `sybil-${n}`, [], { host: '198.51.100.1' })
    // The two hearsay entries' peers connect in from the sybils' group: the group still holds two.
    for (let n = 1; n <= 2; n++) s.learnDirect(id(n), `peer-${n}`, [], { host: '198.51.100.2' })
    expect([...s.values()].filter((e) => e.group !== undefined)).toHaveLength(2)
    expect(s.size).toBe(2)
  })

  it('dials the peers it reached before first', async () => {
    const s = store({ maxPerSource: 32 })
    for (let n = 1; n <= 10; n++) s.learnHearsay(id(999), record(n), none)
    s.learnDirect(id(50), 'friend', ['192.0.2.50:4000'], { dialled: true })
    const dialed = await dialsOf(s, 1)
    expect([...dialed.keys()]).toEqual([id(50)])
  })

  it("never lets strangers from one group push out hearsay or another group's strangers", () => {
    const s = store({ maxEntries: 6, maxPerSource: 2 })
    s.learnHearsay(id(999), record(1), none)
    s.learnDirect(id(2), 'other-group', ['192.0.2.2:4000'], { host: '192.0.2.2' })
    for (let n = 10; n < 30; n++) s.learnDirect(id(n), `sybil-${n}`, [], { host: '198.51.100.1' })
    expect(s.get(id(1))).toBeDefined()
    expect(s.get(id(2))).toBeDefined()
    expect([...s.values()].map((e) => e.name).filter((n) => n.startsWith('sybil'))).toEqual([
      'sybil-28',
      'sybil-29',
    ])
  })
})

/** The addresses connect-to-active dials per peer (every dial fails), within `maxDials`. */
async function dialsOf(s: PeerStore, maxDials?: number): Promise<Map<string, string[]>> {
  const dialed = new Map<string, string[]>()
  await connectToActive(
    {
      store: s,
      sessions: new Map(),
      coolingUntil: () => undefined,
      limits: resolveLimits({ transport: memoryTransport(memoryNetwork(), { host: 'me' }) }),
      query: async () => undefined,
      dial: async (k) => {
        dialed.set(k.id, k.addrs)
        const error = new PeerError('DIAL_FAILED', 'nobody answered')
        return { ok: false, peerId: k.id, name: k.name, address: undefined, status: 'failed', error }
      },
    },
    { rounds: 0, ...(maxDials === undefined ? {} : { maxDials, maxDegree: 1_000 }) },
  )
  return dialed
}
