import { once } from 'node:events'
import { createPeer, generateIdentity, tcpTransport } from '@parley/core'
import { waitFor } from '@parley/testing'
import DHT from 'hyperdht'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { dhtNetworking, joinTopic, type Topic, topicKey } from '../src/index.js'
import { isNobodyListening } from '../src/transport.js'
import { dhtPeerTransport, useTestnet } from './helpers.js'

const testnet = useTestnet()

/** A DHT transport listening under its key, destroyed after the test. */
async function listening() {
  const t = dhtPeerTransport(testnet.bootstrap)
  onTestFinished(() => t.transport.destroy())
  await t.transport.listen(t.transport.address, (conn) => conn.abort())
  return t
}

function joined(topic: Topic): Topic {
  onTestFinished(() => topic.leave())
  return topic
}

describe('topic discovery', () => {
  it('a peer that joins a topic finds the peer already on it', async () => {
    const first = await listening()
    const second = await listening()
    const a = joined(joinTopic(first.transport, 'parley test room'))
    await a.refresh()
    const b = joined(joinTopic(second.transport, 'parley test room'))
    const [found] = (await once(b, 'peer', { signal: AbortSignal.timeout(10_000) })) as [string]
    expect(found).toBe(`dht:${first.identity.peerId}`)
    expect(b.peers()).toEqual([found])
  })

  it('a peer announced under one topic is not found under another', async () => {
    const first = await listening()
    const second = await listening()
    await joined(joinTopic(first.transport, 'room one')).refresh()
    const other = joined(joinTopic(second.transport, 'room two'))
    await other.refresh()
    // The same name does find it: the lookup itself works.
    const same = joined(joinTopic(second.transport, 'room one', { announce: false }))
    await same.refresh()
    expect(same.peers()).toEqual([`dht:${first.identity.peerId}`])
    expect(other.peers()).toEqual([])
  })

  it('a private network keys its topics: without the secret, its peers stay hidden', async () => {
    const first = await listening()
    const second = await listening()
    await joined(joinTopic(first.transport, 'room', { networkSecret: 'apples' })).refresh()
    const outsider = joined(joinTopic(second.transport, 'room', { announce: false }))
    await outsider.refresh()
    expect(outsider.peers()).toEqual([])
    const insider = joined(joinTopic(second.transport, 'room', { networkSecret: 'apples', announce: false }))
    await insider.refresh()
    expect(insider.peers()).toEqual([`dht:${first.identity.peerId}`])
    expect(topicKey('room', 'apples').equals(topicKey('room'))).toBe(false)
  })

  it('a forgotten peer is reported again by the next round (a failed dial is retried)', async () => {
    const first = await listening()
    const second = await listening()
    await joined(joinTopic(first.transport, 'retry room')).refresh()
    const topic = joined(joinTopic(second.transport, 'retry room', { announce: false }))
    const reported: string[] = []
    topic.on('peer', (address) => reported.push(address))
    await topic.refresh()
    expect(reported).toEqual([`dht:${first.identity.peerId}`])
    topic.forget(reported[0]!)
    expect(topic.peers()).toEqual([])
    // Rounds are at most one a second: a refresh right now is refused...
    await topic.refresh()
    expect(reported).toHaveLength(1)
    // ...and allowed a second later (only the clock is faked; HyperDHT's timers run for real).
    vi.useFakeTimers({ toFake: ['Date'] })
    onTestFinished(() => {
      vi.useRealTimers()
    })
    vi.setSystemTime(Date.now() + 1_000)
    await topic.refresh()
    expect(reported).toEqual([`dht:${first.identity.peerId}`, `dht:${first.identity.peerId}`])
  })

  it('keys that never answer each cost one dial: failed ones rest, so the peer that answers is reached', async () => {
    // Anyone can announce any number of keys on a topic for free. Before, the first maxPeers keys seen
    // kept their places for good and every failed one came back the next round.
    const honest = await listening()
    await joined(joinTopic(honest.transport, 'sybil room')).refresh()
    const announcer = new DHT({ bootstrap: testnet.bootstrap })
    onTestFinished(() => announcer.destroy())
    for (let i = 0; i < 24; i++)
      await announcer.announce(topicKey('sybil room'), DHT.keyPair(), []).finished()
    const looker = await listening()
    const topic = joined(joinTopic(looker.transport, 'sybil room', { maxPeers: 4, announce: false }))
    const reported: string[] = []
    topic.on('peer', (address) => reported.push(address))
    // Rounds are at most one a second: only the clock is faked (HyperDHT's timers run for real).
    vi.useFakeTimers({ toFake: ['Date'] })
    onTestFinished(() => {
      vi.useRealTimers()
    })
    const wanted = `dht:${honest.identity.peerId}`
    for (let round = 0; round < 30 && !reported.includes(wanted); round++) {
      vi.setSystemTime(Date.now() + 1_001)
      await topic.refresh()
      // Every key but the honest one fails its dial, as a key nobody listens under does.
      for (const address of topic.peers()) if (address !== wanted) topic.failed(address)
    }
    expect(reported).toContain(wanted)
    expect(new Set(reported).size).toBe(reported.length)
  })

  it('a place freed by a failed dial goes at once to a key already seen, without waiting for a round', async () => {
    // Rounds come once a minute: before the pool, a peer crowded by 300 keys nobody listens under
    // dialed maxPeers of them a minute and had not reached the honest peer after 420 s.
    const honest = await listening()
    await joined(joinTopic(honest.transport, 'pool room')).refresh()
    const announcer = new DHT({ bootstrap: testnet.bootstrap })
    onTestFinished(() => announcer.destroy())
    for (let i = 0; i < 8; i++) await announcer.announce(topicKey('pool room'), DHT.keyPair(), []).finished()
    const looker = await listening()
    const topic = joined(joinTopic(looker.transport, 'pool room', { maxPeers: 2, announce: false }))
    const reported: string[] = []
    topic.on('peer', (address) => reported.push(address))
    await topic.refresh()
    expect(reported).toHaveLength(2)
    const wanted = `dht:${honest.identity.peerId}`
    // No further round runs: every place below is filled from the keys the first round saw.
    for (let i = 0; i < 9 && !reported.includes(wanted); i++) {
      const [address] = topic.peers().filter((a) => a !== wanted)
      if (address !== undefined) topic.failed(address)
    }
    expect(reported).toContain(wanted)
    expect(new Set(reported).size).toBe(reported.length)
  })

  it('reports at most maxPeers peers', async () => {
    const announcers = await Promise.all([listening(), listening(), listening()])
    for (const t of announcers) await joined(joinTopic(t.transport, 'crowded')).refresh()
    const looker = await listening()
    const topic = joined(joinTopic(looker.transport, 'crowded', { maxPeers: 2, announce: false }))
    await topic.refresh()
    expect(topic.peers()).toHaveLength(2)
  })

  it('peers started with the same --join topic connect and exchange messages', async () => {
    const start = async (name: string) => {
      const identity = generateIdentity()
      const net = dhtNetworking({
        identity,
        options: { bootstrap: testnet.bootstrap, join: ['lobby'] },
        other: tcpTransport(),
      })
      const peer = createPeer({
        name,
        identity,
        transport: net.transport,
        upgrader: net.upgrader,
        listen: net.listen,
      })
      onTestFinished(async () => {
        await peer.stop()
        await net.close()
      })
      await peer.start()
      return { peer, net }
    }
    const alice = await start('alice')
    const [lobby] = alice.net.join(alice.peer)
    await lobby!.refresh()
    const bob = await start('bob')
    // Bob finds alice on the topic and dials her; both ends then hold the session.
    const connected = Promise.all([
      waitFor(alice.peer, 'peer:connect', (p) => p.id === bob.peer.id, { timeout: 10_000 }),
      waitFor(bob.peer, 'peer:connect', (p) => p.id === alice.peer.id, { timeout: 10_000 }),
    ])
    bob.net.join(bob.peer)
    await connected
    const got = waitFor(alice.peer, 'message')
    await bob.peer.send(alice.peer.id, 'found you by topic')
    expect(await got).toMatchObject({ text: 'found you by topic', from: { id: bob.peer.id } })
  })

  it('tells a key nobody listens under (which rests) from a server that fails the handshake (tried next round)', async () => {
    const identity = generateIdentity()
    const net = dhtNetworking({ identity, options: { bootstrap: testnet.bootstrap, join: [] } })
    const peer = createPeer({ name: 'dialer', identity, transport: net.transport, upgrader: net.upgrader })
    onTestFinished(async () => {
      await peer.stop()
      await net.close()
    })
    await peer.start()
    const nobody = await peer.connect(`dht:${generateIdentity().peerId}`).catch((err: Error) => err)
    expect(nobody).toMatchObject({ code: 'DIAL_FAILED' })
    expect(isNobodyListening(nobody)).toBe(true)
    const server = await listening() // aborts every connection: a server is there, the handshake fails
    const refused = await peer.connect(`dht:${server.identity.peerId}`).catch((err: Error) => err)
    expect(refused).toBeInstanceOf(Error)
    expect(isNobodyListening(refused)).toBe(false)
  })

  it('refuses a transport that is not a DHT transport', () => {
    expect(() => joinTopic(tcpTransport(), 'room')).toThrow(/dhtTransport/)
  })
})
