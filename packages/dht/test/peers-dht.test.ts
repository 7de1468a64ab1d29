import {
  createPeer,
  generateIdentity,
  type Peer,
  type PeerError,
  type PeerInit,
  tcpTransport,
} from '@parley/core'
import { waitFor } from '@parley/testing'
import DHT from 'hyperdht'
import { describe, expect, it, onTestFinished } from 'vitest'
import { dhtNetworking, dhtSession, dhtTransport, dhtUpgrader, identityKeyPair } from '../src/index.js'
import { useTestnet } from './helpers.js'

const testnet = useTestnet()

/** A started peer listening on the testnet's DHT under its own key. */
async function dhtPeer(name: string, init: Partial<PeerInit> & { secret?: string } = {}): Promise<Peer> {
  const identity = generateIdentity()
  const transport = dhtTransport({ identity, bootstrap: testnet.bootstrap, dialTimeout: 10_000 })
  const { secret, ...rest } = init
  const peer = createPeer({
    name,
    identity,
    transport,
    upgrader: dhtUpgrader(secret !== undefined ? { networkSecret: secret } : {}),
    listen: transport.address,
    ...rest,
  })
  onTestFinished(async () => {
    await peer.stop()
    await transport.destroy()
  })
  await peer.start()
  return peer
}

describe('peers over the DHT', () => {
  it('a peer listens under its identity key, and another reaches it by dht:<peer id> alone', async () => {
    const alice = await dhtPeer('alice')
    const bob = await dhtPeer('bob')
    expect(bob.addresses).toEqual([`dht:${bob.id}`])

    const info = await alice.connect(`dht:${bob.id}`)
    expect(info.id).toBe(bob.id)
    const got = waitFor(bob, 'message')
    const sent = await alice.send(bob.id, 'hello through the DHT')
    expect(sent.peerId).toBe(bob.id)
    expect(await got).toMatchObject({ text: 'hello through the DHT', from: { id: alice.id, name: 'alice' } })

    // And back, on the same connection.
    const back = waitFor(alice, 'message')
    await bob.send(alice.id, 'hello back')
    expect(await back).toMatchObject({ text: 'hello back', from: { id: bob.id } })
  })

  it('the authenticated peer id is the key HyperDHT verified, on both ends', async () => {
    const a = generateIdentity()
    const b = generateIdentity()
    const ta = dhtTransport({ identity: a, bootstrap: testnet.bootstrap })
    const tb = dhtTransport({ identity: b, bootstrap: testnet.bootstrap })
    onTestFinished(() => Promise.all([ta.destroy(), tb.destroy()]).then(() => {}))
    const upgrader = dhtUpgrader()
    const accepted: Array<ReturnType<typeof upgrader.upgrade>> = []
    await tb.listen(tb.address, (conn) => accepted.push(upgrader.upgrade(conn, { role: 'responder' })))
    const raw = await ta.dial(tb.address)
    expect(dhtSession(raw)).toMatchObject({ remotePeerId: b.peerId, initiator: true })
    const dialer = await upgrader.upgrade(raw, { role: 'initiator' })
    expect(accepted).toHaveLength(1)
    const responder = await accepted[0]!
    expect(dialer.remotePeerId).toBe(b.peerId)
    expect(responder.remotePeerId).toBe(a.peerId)
    dialer.abort()
  })

  it('peers on the same network secret talk over the DHT', async () => {
    const alice = await dhtPeer('alice', { secret: 'apples' })
    const bob = await dhtPeer('bob', { secret: 'apples' })
    await expect(alice.connect(`dht:${bob.id}`)).resolves.toMatchObject({ id: bob.id })
  })

  it('peers on different network secrets cannot talk over the DHT, and both say so', async () => {
    const alice = await dhtPeer('alice', { secret: 'apples' })
    const bob = await dhtPeer('bob', { secret: 'oranges' })
    const bobSaw = waitFor(bob, 'error', (e) => e.code === 'HANDSHAKE_FAILED', { timeout: 10_000 })
    const err = (await alice.connect(`dht:${bob.id}`).catch((e) => e)) as PeerError
    expect(err.code).toBe('HANDSHAKE_FAILED')
    expect(err.message).toMatch(/network secret/)
    expect((await bobSaw).message).toMatch(/network secret/)
    expect(bob.peers().connected).toEqual([])
    expect(alice.peers().connected).toEqual([])
  })

  it('a private network refuses a peer without its secret', async () => {
    const alice = await dhtPeer('alice')
    const bob = await dhtPeer('bob', { secret: 'apples' })
    const err = (await alice.connect(`dht:${bob.id}`).catch((e) => e)) as PeerError
    expect(err.code).toBe('HANDSHAKE_FAILED')
    expect(bob.peers().connected).toEqual([])
  })

  it('dialing a key nobody listens on fails with DIAL_FAILED', async () => {
    const alice = await dhtPeer('alice')
    const err = (await alice.connect(`dht:${generateIdentity().peerId}`).catch((e) => e)) as PeerError
    expect(err.code).toBe('DIAL_FAILED')
  })

  it('one peer speaks TCP and DHT side by side: the upgrader is picked per connection', async () => {
    const bootstrap = testnet.bootstrap
    const aliceId = generateIdentity()
    const alicenet = dhtNetworking({
      identity: aliceId,
      options: { bootstrap, join: [] },
      networkSecret: 'pears',
    })
    const alice = createPeer({
      name: 'alice',
      identity: aliceId,
      transport: alicenet.transport,
      upgrader: alicenet.upgrader,
      listen: alicenet.listen,
    })
    // Bob listens on TCP only, with the default Noise upgrader.
    const bob = createPeer({ name: 'bob', transport: tcpTransport(), networkSecret: 'pears' })
    const carolId = generateIdentity()
    const carolnet = dhtNetworking({
      identity: carolId,
      options: { bootstrap, join: [] },
      networkSecret: 'pears',
    })
    const carol = createPeer({
      name: 'carol',
      identity: carolId,
      transport: carolnet.transport,
      upgrader: carolnet.upgrader,
      listen: carolnet.listen,
    })
    onTestFinished(async () => {
      await Promise.all([alice.stop(), bob.stop(), carol.stop()])
      await Promise.all([alicenet.close(), carolnet.close()])
    })
    await Promise.all([alice.start(), bob.start(), carol.start()])

    await expect(alice.connect(bob.addresses[0]!)).resolves.toMatchObject({ id: bob.id })
    await expect(alice.connect(`dht:${carol.id}`)).resolves.toMatchObject({ id: carol.id })
    const got = waitFor(carol, 'message')
    await alice.send(carol.id, 'over the DHT')
    expect(await got).toMatchObject({ text: 'over the DHT', from: { id: alice.id } })
    const gotTcp = waitFor(bob, 'message')
    await alice.send(bob.id, 'over TCP')
    expect(await gotTcp).toMatchObject({ text: 'over TCP', from: { id: alice.id } })
  })
})

describe('keys', () => {
  it("a Parley identity is HyperDHT's key pair of the same seed", () => {
    const identity = generateIdentity()
    const keyPair = identityKeyPair(identity)
    const seed = keyPair.secretKey.subarray(0, 32)
    const expected = DHT.keyPair(seed)
    expect(keyPair.publicKey.equals(expected.publicKey)).toBe(true)
    expect(keyPair.secretKey.equals(expected.secretKey)).toBe(true)
    expect(keyPair.publicKey.toString('hex')).toBe(identity.peerId)
  })
})

describe('listening', () => {
  it('a DHT transport listens only on its own key', async () => {
    const identity = generateIdentity()
    const transport = dhtTransport({ identity, bootstrap: testnet.bootstrap })
    onTestFinished(() => transport.destroy())
    const other = `dht:${generateIdentity().peerId}`
    await expect(transport.listen(other, () => {})).rejects.toMatchObject({ code: 'INVALID_ADDRESS' })
  })

  it('the public DHT is never a silent default', () => {
    const identity = generateIdentity()
    // @ts-expect-error bootstrap is required
    expect(() => dhtTransport({ identity })).toThrow(/bootstrap/)
  })
})
