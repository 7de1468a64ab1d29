import {
  createLegacyBridge,
  createPeer,
  type LegacyBridge,
  type LegacyDrop,
  type LegacyMessage,
  type LegacyPeerInfo,
  legacyAwareTransport,
  type Peer,
  type PeerError,
  type PeerInit,
  tcpTransport,
} from '@parley/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { type FakeLegacyPeer, startFakeLegacyPeer, waitFor } from '../src/index.js'

// A Parley peer with the legacy bridge and a fake original peer (packages/testing/src/legacy-peer.ts),
// over TCP on 127.0.0.1: the "Done when", as tests.

async function bridgedPeer(name: string): Promise<{ peer: Peer; bridge: LegacyBridge; address: string }> {
  const tcp = tcpTransport()
  let peer: Peer | undefined
  const bridge = createLegacyBridge({ transport: tcp, name, ownAddress: () => peer?.addresses[0] })
  peer = createPeer({ transport: legacyAwareTransport(tcp, bridge), name, listen: '127.0.0.1:0' })
  await peer.start()
  onTestFinished(async () => {
    await bridge.close()
    await peer.stop()
  })
  return { peer, bridge, address: peer.addresses[0]! }
}

async function parleyPeer(name: string, init: Partial<PeerInit> = {}): Promise<Peer> {
  const peer = createPeer({ transport: tcpTransport(), name, listen: '127.0.0.1:0', ...init })
  await peer.start()
  onTestFinished(() => peer.stop())
  return peer
}

async function fakeLegacy(name: string): Promise<FakeLegacyPeer> {
  const legacy = await startFakeLegacyPeer({ name })
  onTestFinished(() => legacy.close())
  return legacy
}

/** The first `event` of the bridge whose argument matches. */
function next<T>(
  bridge: LegacyBridge,
  event: string,
  predicate: (value: T) => boolean = () => true,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const signal = AbortSignal.timeout(5_000)
    const listener = (value: T) => {
      if (!predicate(value)) return
      bridge.off(event as 'message', listener as never)
      resolve(value)
    }
    signal.addEventListener('abort', () => {
      bridge.off(event as 'message', listener as never)
      reject(new Error(`no matching ${event} from the bridge in time`))
    })
    bridge.on(event as 'message', listener as never)
  })
}

describe('a Parley peer with --legacy and an original plain-text peer', () => {
  it('chat both ways', async () => {
    const alice = await bridgedPeer('alice')
    const bob = await fakeLegacy('bob')

    const got = next<LegacyMessage>(alice.bridge, 'message')
    await bob.send(alice.address, 'hello alice, from the old world')
    expect(await got).toMatchObject({
      from: { address: bob.address, name: 'bob' },
      text: 'hello alice, from the old world',
      legacy: true,
      verified: false,
    })

    await alice.bridge.send(bob.address, 'hi bob, welcome')
    await bob.next((r) => r.kind === 'chat')
    expect(bob.messages()).toEqual([{ address: alice.address, name: 'alice', text: 'hi bob, welcome' }])
  })

  it('list each other', async () => {
    const alice = await bridgedPeer('alice')
    const bob = await fakeLegacy('bob')
    const joined = next<LegacyPeerInfo>(alice.bridge, 'peer:joined')
    await bob.send(alice.address, 'hi')
    expect(await joined).toMatchObject({ address: bob.address, name: 'bob', legacy: true })
    expect(alice.bridge.peers()).toEqual([
      { address: bob.address, name: 'bob', lastSeen: expect.any(Number), legacy: true },
    ])
    await alice.bridge.send('bob', 'hi back') // by name, now that it is listed
    await bob.next((r) => r.kind === 'chat')
    expect([...bob.peers]).toEqual([[alice.address, 'alice']])
  })

  it('connect-to-active sends connect to legacy peers, and a legacy connect is heard', async () => {
    const alice = await bridgedPeer('alice')
    const bob = await fakeLegacy('bob')
    alice.bridge.addPeer(bob.address) // --legacy-peer: a legacy peer never answers a Parley handshake
    expect(await alice.bridge.connectAll()).toEqual([{ address: bob.address, ok: true }])
    expect(await bob.next((r) => r.kind === 'connect')).toMatchObject({
      address: alice.address,
      name: 'alice',
    })
    expect(bob.peers.get(alice.address)).toBe('alice')

    const joined = next<LegacyPeerInfo>(alice.bridge, 'peer:joined')
    await bob.connectAll()
    expect(await joined).toMatchObject({ address: bob.address, name: 'bob' })
  })

  it('leave gracefully: quit sends exit to every known legacy peer, and a legacy exit is heard', async () => {
    const alice = await bridgedPeer('alice')
    const bob = await fakeLegacy('bob')
    const carol = await fakeLegacy('carol')
    alice.bridge.addPeer(bob.address)
    alice.bridge.addPeer(carol.address)
    await alice.bridge.connectAll()
    await Promise.all([bob, carol].map((p) => p.next((r) => r.kind === 'connect')))

    // The original quits by telling everyone it knows.
    const left = next<{ peer: LegacyPeerInfo; reason: string }>(alice.bridge, 'peer:left')
    await bob.quit()
    expect(await left).toMatchObject({ peer: { address: bob.address, name: 'bob' }, reason: 'exit' })
    expect(alice.bridge.peers().map((p) => p.address)).toEqual([carol.address])

    // Parley's quit does the same for every legacy peer still known.
    expect(await alice.bridge.exitAll()).toEqual([{ address: carol.address, ok: true }])
    expect(await carol.next((r) => r.kind === 'exit')).toMatchObject({
      address: alice.address,
      name: 'alice',
    })
    expect(carol.peers.has(alice.address)).toBe(false)
  })

  it('malformed legacy input is dropped without harm, and the peer keeps serving Parley and legacy peers', async () => {
    const alice = await bridgedPeer('alice')
    const bob = await fakeLegacy('bob')
    const drops: LegacyDrop[] = []
    alice.bridge.on('dropped', (d) => drops.push(d))
    const errors: PeerError[] = []
    alice.peer.on('error', (e) => errors.push(e))

    await bob.sendRaw(alice.address, 'no-spaces-at-all')
    await bob.sendRaw(alice.address, `${bob.address} bob`)
    await bob.sendRaw(alice.address, 'localhost:5001 bob hi')
    await bob.sendRaw(alice.address, Buffer.from([0x31, 0x3a, 0x31, 0x20, 0x62, 0x20, 0xc3, 0x28]))
    await bob.sendRaw(alice.address, `${bob.address} bob ${'x'.repeat(4000)}`)
    await bob.sendRaw(alice.address, `${bob.address} ${'n'.repeat(100)} hi`)
    await expect.poll(() => drops.length, { timeout: 5_000 }).toBe(6)
    expect(drops.map((d) => d.code).sort()).toEqual([
      'INVALID_ADDRESS',
      'INVALID_NAME',
      'INVALID_UTF8',
      'MALFORMED',
      'MALFORMED',
      'TOO_LONG',
    ])
    for (const d of drops) expect(d.reason).toMatch(/\w/)
    expect(alice.bridge.peers()).toEqual([])
    expect(errors).toEqual([])

    const carol = await parleyPeer('carol')
    await carol.connect(alice.address)
    const parley = waitFor(alice.peer, 'message')
    await carol.send(alice.peer.id, 'parley still works')
    expect((await parley).text).toBe('parley still works')

    const legacy = next<LegacyMessage>(alice.bridge, 'message')
    await bob.send(alice.address, 'legacy still works')
    expect((await legacy).text).toBe('legacy still works')
  })

  it('a message too long for one legacy recv is refused with a clear error, not split', async () => {
    const alice = await bridgedPeer('alice')
    const bob = await fakeLegacy('bob')
    const err = (await alice.bridge.send(bob.address, 'x'.repeat(1010)).catch((e) => e)) as {
      code: string
      message: string
    }
    expect(err.code).toBe('MESSAGE_TOO_LONG')
    expect(err.message).toMatch(/1024/)
    await alice.bridge.send(bob.address, 'short one')
    await bob.next((r) => r.kind === 'chat')
    expect(bob.received.map((r) => r.text)).toEqual(['short one'])
  })

  it('Parley-to-Parley still works through the decorated listener, both ways', async () => {
    const alice = await bridgedPeer('alice')
    const carol = await bridgedPeer('carol')
    const dave = await parleyPeer('dave')
    await carol.peer.connect(alice.address)
    await dave.connect(alice.address)
    await alice.peer.connect(carol.address) // the same pair again: deduplicated by the peer
    const atAlice = waitFor(alice.peer, 'message', (m) => m.text === 'from dave')
    await dave.send(alice.peer.id, 'from dave')
    await atAlice
    const atCarol = waitFor(carol.peer, 'message')
    await alice.peer.send(carol.peer.id, 'from alice')
    expect((await atCarol).text).toBe('from alice')
  })
})

describe('a Parley peer without --legacy', () => {
  it('refuses legacy bytes cleanly: a handshake failure at once, and it keeps serving', async () => {
    // A handshake timeout far beyond the wait below: a refusal that arrives at all came from the
    // bytes (the length prefix), not from the timer; the message says which.
    const alice = await parleyPeer('alice', { handshakeTimeout: 600_000 })
    const bob = await fakeLegacy('bob')
    const refused = waitFor(alice, 'error', (e) => e.code === 'HANDSHAKE_FAILED')
    const socket = await bob.sendRaw(alice.addresses[0]!, `${bob.address} bob hello?`)
    const err = await refused
    expect(err.message).toMatch(/not speaking Parley/)
    expect(socket.destroyed).toBe(true)
    expect(alice.peers().connected).toEqual([])

    const carol = await parleyPeer('carol')
    await expect(carol.connect(alice.addresses[0]!)).resolves.toMatchObject({ id: alice.id })
  })

  it('and a Parley dial to a legacy peer fails without hurting it', async () => {
    const alice = await parleyPeer('alice')
    const bob = await fakeLegacy('bob')
    const err = (await alice.connect(bob.address).catch((e) => e)) as PeerError
    expect(err.code).toBe('HANDSHAKE_FAILED')
    // The original reads Noise's binary first message as a broken string and carries on.
    await bob.next((r) => r.kind === 'error')
    const alice2 = await bridgedPeer('alice2')
    const got = next<LegacyMessage>(alice2.bridge, 'message')
    await bob.send(alice2.address, 'still alive')
    expect((await got).text).toBe('still alive')
  })
})
