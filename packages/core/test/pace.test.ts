import { describe, expect, it } from 'vitest'
import type { PeerError } from '../src/peer-errors.js'
import type { PeerInit } from '../src/peer-types.js'
import { plaintextUpgrader } from '../src/secure/plaintext.js'
import { connectedPair, memoryPeer } from './fixtures/memory-peer.js'
import { rawClient } from './fixtures/raw-client.js'

// A receiver ends the session of a peer that sends past its rate budget. Two honest peers with the same
// configuration never get there: the sender keeps its TEXTs within the budget, and sends past it wait.

// 2,000 messages/s with room for a burst of 200: a thousand sends at once are five bursts' worth.
const init: Partial<PeerInit> = { rateLimit: { perSecond: 2_000, burst: 200 }, inFlight: { waiting: 1_000 } }

async function pair() {
  const { alice, bob } = await connectedPair(init)
  const delivered: string[] = []
  bob.on('message', (m) => delivered.push(m.text))
  const errors: PeerError[] = []
  alice.on('error', (e) => errors.push(e))
  bob.on('error', (e) => errors.push(e))
  return { alice, bob, delivered, errors }
}

describe('sending within the remote rate budget', () => {
  it('a thousand sends at once are all delivered and acknowledged, and the sender stays welcome', async () => {
    const { alice, bob, delivered, errors } = await pair()
    const texts = Array.from({ length: 1_000 }, (_, i) => `m${i}`)
    const results = await Promise.all(texts.map((t) => alice.send(bob.id, t)))
    expect(results).toHaveLength(1_000)
    expect(delivered).toEqual(texts)
    expect(errors).toEqual([])
    expect(bob.peers().connected.map((p) => p.id)).toEqual([alice.id])
  })

  it('so is a batch of a thousand', async () => {
    const { alice, bob, delivered, errors } = await pair()
    const texts = Array.from({ length: 1_000 }, (_, i) => `b${i}`)
    await expect(alice.sendMany(bob.id, texts)).resolves.toMatchObject({ count: 1_000 })
    expect(delivered).toEqual(texts)
    expect(errors).toEqual([])
  })
})

describe('a network group discouraged by someone else', () => {
  it('does not cost an honest peer from it its budget', async () => {
    const c = await rawClient(init)
    // The hand-written client on host `client` sends a frame of an unknown type: a violation, which
    // discourages the host's network group.
    c.conn.send(Buffer.from([0, 0, 0, 2, 0, 0x7f]))
    await c.closed
    expect(c.errors.map((e) => e.code)).toContain('REJECTED')
    const honest = memoryPeer(c.network, 'client', { upgrader: plaintextUpgrader(), ...init })
    await honest.start()
    const errors: PeerError[] = []
    honest.on('error', (e) => errors.push(e))
    await honest.connect(c.peer.addresses[0]!)
    const texts = Array.from({ length: 1_000 }, (_, i) => `h${i}`)
    await Promise.all(texts.map((t) => honest.send(c.peer.id, t)))
    expect(c.delivered()).toBe(1_000)
    expect(errors).toEqual([])
  })
})
