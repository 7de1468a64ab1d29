import { once } from 'node:events'
import { describe, expect, it, onTestFinished } from 'vitest'
import { generateIdentity, type Identity } from '../src/identity.js'
import { memoryKnownPeers } from '../src/known-peers.js'
import { createPeer } from '../src/peer.js'
import type { PeerError } from '../src/peer-errors.js'
import type { DisconnectEvent, PeerInit } from '../src/peer-types.js'
import type { Connection, Transport } from '../src/transport.js'
import { memoryNetwork, memoryTransport } from '../src/transports/memory.js'
import { mapAccepted } from './fixtures/memory-peer.js'

// A peer is its key: addresses and names are hints, pinned to the key first seen with them.

function network() {
  const net = memoryNetwork()
  const make = async (name: string, host: string, init: Partial<PeerInit> = {}) => {
    const peer = createPeer({ transport: memoryTransport(net, { host }), name, listen: `${host}:0`, ...init })
    onTestFinished(() => peer.stop())
    await peer.start()
    return peer
  }
  return { net, make }
}

describe('trust on first use, at the peer', () => {
  it('by default refuses a dial that reaches another key than the one saved for the address, telling it why', async () => {
    const { make } = network()
    const known = memoryKnownPeers()
    const alice = await make('alice', 'alice', { knownPeers: known })
    const bob = await make('bob', 'bob')
    const address = bob.addresses[0]!
    await known.remember(address, generateIdentity().peerId, 'bob')
    const left = once(bob, 'peer:disconnect')
    await expect(alice.connect(address)).rejects.toMatchObject({ code: 'KEY_CHANGED' })
    // The refused peer took the WELCOME for a session: it hears why it ends (a GOODBYE), not a reset.
    const [event] = (await left) as [DisconnectEvent]
    expect(event).toMatchObject({ reason: 'goodbye', message: expect.stringMatching(/not the one saved/) })
    expect(alice.peers().connected).toEqual([])
    // The user decides, per peer, in the running program: the change is recorded and the dial works.
    expect(alice.keyChanges()).toEqual([
      expect.objectContaining({ address, actual: bob.id, direction: 'outbound' }),
    ])
    await alice.acceptKeyChange(address)
    expect(known.check(address, bob.id)).toEqual({ status: 'match' })
    await expect(alice.connect(address)).resolves.toMatchObject({ id: bob.id })
  })

  it('a peer dialing in that claims a saved address and name is reported, and takes over nothing', async () => {
    const { make } = network()
    const known = memoryKnownPeers()
    const alice = await make('alice', 'alice', { knownPeers: known })
    const bobIdentity: Identity = generateIdentity()
    const bob = await make('bob', 'bob', { identity: bobIdentity })
    const bobAddress = bob.addresses[0]!
    await alice.connect(bobAddress)
    await alice.disconnect(bob.id)
    await bob.stop()
    // Mallory dials in with bob's name and claims bob's address as her own.
    const errors: PeerError[] = []
    const keyChanges = () => errors.filter((e) => e.code === 'KEY_CHANGED').length
    const bothReported = new Promise<void>((resolve) =>
      alice.on('error', (e) => {
        errors.push(e)
        if (keyChanges() === 2) resolve()
      }),
    )
    const mallory = await make('bob', 'mallory', { announce: [bobAddress] })
    await mallory.connect(alice.addresses[0]!)
    await bothReported
    expect(errors.map((e) => e.message).join('\n')).toContain(bobAddress)
    // Neither the name nor the address reaches her: bob's address is dialed (and bob is down).
    await expect(alice.send('bob', 'secret')).rejects.toMatchObject({ code: 'NOT_CONNECTED' })
    await expect(alice.send(bobAddress, 'secret')).rejects.toMatchObject({ code: 'DIAL_FAILED' })
    let delivered = 0
    mallory.on('message', () => delivered++)
    await expect(alice.connect(bobAddress)).rejects.toMatchObject({ code: 'DIAL_FAILED' })
    expect(delivered).toBe(0)
  })

  it('a peer connecting in from the saved address of another key does not get what is sent to that address', async () => {
    const { net, make } = network()
    const known = memoryKnownPeers()
    // Alice's listener sees every inbound connection come from `spoofed` once it is set: what a peer on
    // bob's host sees when someone there connects from the port bob listened on before he stopped.
    let spoofed: string | undefined
    const alice = await make('alice', 'alice', {
      knownPeers: known,
      transport: fromAddress(memoryTransport(net, { host: 'alice' }), () => spoofed),
    })
    const bob = await make('bob', 'bob')
    const bobAddress = bob.addresses[0]!
    await alice.connect(bobAddress)
    await alice.disconnect(bob.id)
    await bob.stop()
    spoofed = bobAddress
    const mallory = await make('bob', 'mallory')
    let delivered = 0
    mallory.on('message', () => delivered++)
    await mallory.connect(alice.addresses[0]!)
    expect(alice.peers().connected).toEqual([
      expect.objectContaining({ id: mallory.id, address: bobAddress }),
    ])
    // The send dials bob's address, where nobody listens now, rather than taking mallory's session.
    await expect(alice.send(bobAddress, 'secret')).rejects.toMatchObject({ code: 'DIAL_FAILED' })
    await expect(alice.connect(bobAddress)).rejects.toMatchObject({ code: 'DIAL_FAILED' })
    expect(delivered).toBe(0)
    // An address saved for no key, or for the key that connects from it, still finds the session.
    await known.remember(bobAddress, mallory.id, 'bob')
    await expect(alice.send(bobAddress, 'hi')).resolves.toMatchObject({ peerId: mallory.id })
  })

  it('a stranger calling itself by the name of a peer that connected before does not get what is sent to that name', async () => {
    const { make } = network()
    const victim = await make('victim', 'victim')
    const aliceIdentity = generateIdentity()
    const alice = await make('alice', 'alice', { identity: aliceIdentity })
    // Alice connects in (her name is not saved with her key), then leaves.
    await alice.connect(victim.addresses[0]!)
    const aliceLeft = once(victim, 'peer:disconnect')
    await alice.stop()
    await aliceLeft
    expect(victim.peers().connected).toEqual([])
    const mallory = await make('alice', 'mallory')
    let delivered = 0
    mallory.on('message', () => delivered++)
    await mallory.connect(victim.addresses[0]!)
    // Two keys are known by that name now: it means neither, and the sender is told to pick a key.
    await expect(victim.send('alice', 'secret for alice')).rejects.toMatchObject({
      code: 'NOT_CONNECTED',
      message: expect.stringContaining('"alice" is the name of 2 peers'),
    })
    expect(victim.namedKeys('alice')).toEqual([alice.id, mallory.id])
    // Its own key, and its address, still reach it.
    await expect(victim.send(mallory.id, 'hi')).resolves.toMatchObject({ peerId: mallory.id })
    expect(delivered).toBe(1)
    // The alice it knew, back, is reached by her key; by the name only once the stranger is forgotten.
    const aliceAgain = await make('alice', 'alice2', { identity: aliceIdentity })
    await aliceAgain.connect(victim.addresses[0]!)
    await expect(victim.send('alice', 'welcome back')).rejects.toMatchObject({ code: 'NOT_CONNECTED' })
    await expect(victim.send(alice.id, 'welcome back')).resolves.toMatchObject({ peerId: alice.id })
    expect(delivered).toBe(1)
    // A name seen with one key only means that key.
    const bob = await make('bob', 'bob')
    await bob.connect(victim.addresses[0]!)
    await expect(victim.send('bob', 'hi bob')).resolves.toMatchObject({ peerId: bob.id })
  })

  it('names a peer without a name by the first 64 bits of its key', () => {
    const anonymous = createPeer({
      transport: memoryTransport(memoryNetwork(), { host: 'x' }),
      listen: false,
    })
    const id = anonymous.id
    expect(anonymous.name).toBe(`peer-${id.slice(0, 16)}`)
  })
})

describe('dedup that cannot be flushed', () => {
  it('cycling over a thousand throwaway identities does not make a reconnecting sender deliver twice', async () => {
    const { net, make } = network()
    const victim = await make('victim', 'victim', { rateLimit: false })
    // The sender redials only when told to (below), after the flood.
    const sender = await make('sender', 'sender', {
      reconnect: { initialDelay: 600_000 },
      ackTimeout: 120_000,
    })
    const texts: string[] = []
    victim.on('message', (m) => m.from.id === sender.id && texts.push(m.text))
    await sender.connect(victim.addresses[0]!)
    // The victim gets the message, then the connection dies before its acknowledgement leaves.
    const received = once(victim, 'message')
    victim.once('message', () => net.dropConnections('sender'))
    const sent = sender.send(victim.id, 'exactly once')
    await received
    expect(texts).toEqual(['exactly once'])
    // 1,030 throwaway peers each deliver one message: each a new sender in the victim's dedup state.
    for (let i = 0; i < 1_030; i++) {
      const throwaway = createPeer({ transport: memoryTransport(net, { host: `t${i}` }), listen: false })
      await throwaway.start()
      await throwaway.send(victim.addresses[0]!, `junk ${i}`)
      await throwaway.stop()
    }
    // The sender comes back and re-sends what was never acknowledged: acknowledged now, not delivered again.
    await sender.connect(victim.addresses[0]!)
    await expect(sent).resolves.toMatchObject({ peerId: victim.id })
    await sender.send(victim.id, 'after')
    expect(texts).toEqual(['exactly once', 'after'])
  }, 60_000)
})

/** `inner`, except that the connections it accepts report `from()` as their remote address when set. */
function fromAddress(inner: Transport, from: () => string | undefined): Transport {
  return mapAccepted(inner, (conn) => {
    const spoofed = from()
    return spoofed === undefined ? conn : withRemoteAddress(conn, spoofed)
  })
}

function withRemoteAddress(conn: Connection, remoteAddress: string): Connection {
  return new Proxy(conn, {
    get(target, key) {
      if (key === 'remoteAddress') return remoteAddress
      const value = Reflect.get(target, key, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}
