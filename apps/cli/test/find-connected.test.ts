import { fingerprint, type Peer, type PeerInfo } from '@parley/core'
import { describe, expect, test } from 'vitest'
import { findConnected, namedLike, namesSelf } from '../src/find-connected.js'

const info = (id: string, name: string, address: string, listenAddrs: string[] = []): PeerInfo =>
  ({ id, name, address, listenAddrs, direction: 'inbound', connectedAt: 0 }) as unknown as PeerInfo

/** A peer with these sessions; `named` says which ids a name may mean (core's namedKeys). */
const peerWith = (connected: PeerInfo[], named: Record<string, string[]> = {}) =>
  ({
    peers: () => ({ connected, known: [] }),
    namedKeys: (name: string) => named[name] ?? [],
  }) as unknown as Peer

describe('whom a target names among the connected peers', () => {
  const alice = 'a1'.repeat(32)
  const mallory = 'b2'.repeat(32)

  test('an id, fingerprint or prefix is never taken for a peer that calls itself so', () => {
    const peer = peerWith([info(mallory, alice, '127.0.0.1:5000')])
    for (const target of [alice, alice.slice(0, 8), fingerprint(alice), fingerprint(alice).toUpperCase()]) {
      expect(findConnected(peer, target)).toBeUndefined()
      expect(namedLike(peer, target)).toEqual([])
    }
    // Its own id, fingerprint or prefix names it.
    expect(findConnected(peer, fingerprint(mallory))?.id).toBe(mallory)
    expect(findConnected(peer, mallory.slice(0, 6))?.id).toBe(mallory)
  })

  test('an address names the peer reached there, not one that claims to listen there', () => {
    const peer = peerWith([info(mallory, 'mallory', '127.0.0.1:5000', ['127.0.0.1:4000'])])
    expect(findConnected(peer, '127.0.0.1:4000')).toBeUndefined()
    expect(findConnected(peer, '127.0.0.1:5000')?.id).toBe(mallory)
  })

  test('a plain name names its one holder', () => {
    const peer = peerWith([info(alice, 'alice', 'a:1'), info(mallory, 'bob', 'b:1')])
    expect(findConnected(peer, 'bob')?.id).toBe(mallory)
  })

  test('a name that means another peer (saved, or the one known first by it) never picks the one calling itself so', () => {
    const away = 'c3'.repeat(32)
    // The alice we know is away; a stranger calls itself alice.
    const saved = peerWith([info(mallory, 'alice', 'm:1')], { alice: [away] })
    expect(findConnected(saved, 'alice')).toBeUndefined()
    expect(namedLike(saved, 'alice').map((p) => p.id)).toEqual([away])
    // Two keys known first-hand by one name: neither is picked by it.
    const both = peerWith([info(mallory, 'alice', 'm:1')], { alice: [away, mallory] })
    expect(findConnected(both, 'alice')).toBeUndefined()
    expect(namedLike(both, 'alice')).toHaveLength(2)
  })

  test('your own name, id or fingerprint (with or without colons) names you; others do not', () => {
    const me = { id: 'ab'.repeat(32), name: 'alice' }
    for (const t of ['alice', me.id, fingerprint(me.id), fingerprint(me.id).replace(/:/g, '').toUpperCase()])
      expect(namesSelf(me, t), t).toBe(true)
    for (const t of ['bob', 'ab'.repeat(7), 'Alice']) expect(namesSelf(me, t), t).toBe(false)
  })
})
