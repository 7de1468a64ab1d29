import { once } from 'node:events'
import { createServer, connect as netConnect, type Socket } from 'node:net'
import {
  createPeer,
  generateIdentity,
  hasAesInstructions,
  memoryKnownPeers,
  memoryNetwork,
  memoryTransport,
  type PeerError,
  type PeerInit,
  type Transport,
  tcpTransport,
} from '@parley/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { inbox, interceptTransport, waitFor } from '../src/index.js'

// Secure sessions as a user sees them, over both transports: who may talk, and what tampering does.

type Fixture = { make: () => Transport; listen: (host: string) => string }
const fixtures: Array<[string, () => Fixture]> = [
  [
    'memory',
    () => {
      const network = memoryNetwork()
      let n = 0
      return { make: () => memoryTransport(network, { host: `h${n++}` }), listen: (host) => `${host}:0` }
    },
  ],
  ['tcp', () => ({ make: () => tcpTransport(), listen: () => '127.0.0.1:0' })],
]

describe.each(fixtures)('secure sessions over %s', (_name, fixture) => {
  async function peer(name: string, init: Partial<PeerInit> = {}) {
    const f = current
    const p = createPeer({ name, transport: f.make(), listen: f.listen(name), ...init })
    onTestFinished(() => p.stop())
    await p.start()
    return p
  }
  let current: Fixture
  const fresh = () => {
    current = fixture()
  }

  it('honest peers authenticate each other by key', async () => {
    fresh()
    const alice = await peer('alice')
    const bob = await peer('bob')
    const info = await alice.connect(bob.addresses[0]!)
    expect(info.id).toBe(bob.id)
    const got = waitFor(bob, 'message')
    await alice.send(bob.id, 'secret hello')
    expect(await got).toMatchObject({ text: 'secret hello', from: { id: alice.id } })
  })

  it('peers on different network secrets cannot talk, and both say so', async () => {
    fresh()
    const alice = await peer('alice', { networkSecret: 'apples' })
    const bob = await peer('bob', { networkSecret: 'oranges' })
    const bobSaw = waitFor(bob, 'error', (e) => e.code === 'HANDSHAKE_FAILED')
    const err = (await alice.connect(bob.addresses[0]!).catch((e) => e)) as PeerError
    expect(err.code).toBe('HANDSHAKE_FAILED')
    expect(err.message).toMatch(/network secret/)
    expect((await bobSaw).message).toMatch(/network secret/)
    expect(bob.peers().connected).toEqual([])
  })

  it('peers on the same network secret talk', async () => {
    fresh()
    const alice = await peer('alice', { networkSecret: 'apples' })
    const bob = await peer('bob', { networkSecret: 'apples' })
    await expect(alice.connect(bob.addresses[0]!)).resolves.toMatchObject({ id: bob.id })
  })

  // Where this machine has no AES instructions, the peer keeps ChaCha20-Poly1305 and says so on the wire.
  it("a peer set to cipher: 'AESGCM' asks a default peer for AES-256-GCM where it can, and they talk both ways", async () => {
    fresh()
    const firstBytes: string[] = []
    const transport = interceptTransport(current.make(), (bytes, index) => {
      if (index === 0) firstBytes.push(Buffer.from(bytes.subarray(0, 3)).toString('hex'))
      return bytes
    })
    const alice = createPeer({ name: 'alice', transport, listen: false, cipher: 'AESGCM' })
    onTestFinished(() => alice.stop())
    await alice.start()
    const bob = await peer('bob')
    await alice.connect(bob.addresses[0]!)
    // Message 1 of the handshake: [u16 33] 0x02 (AESGCM) ‖ e; without AES instructions, the plain one.
    expect(firstBytes.map((hex) => (hasAesInstructions() ? hex : hex.slice(0, 4)))).toEqual([
      hasAesInstructions() ? '002102' : '0020',
    ])
    const big = 'x'.repeat(60_000)
    const atBob = waitFor(bob, 'message')
    await alice.send(bob.id, big)
    expect((await atBob).text).toBe(big)
    const atAlice = waitFor(alice, 'message')
    await bob.send(alice.id, 'and back')
    expect((await atAlice).text).toBe('and back')
  })

  it('an impostor at a saved address is refused loudly, unless the user accepts the change', async () => {
    fresh()
    const knownPeers = memoryKnownPeers()
    const changes: string[] = []
    let accept = false
    const alice = await peer('alice', {
      knownPeers,
      onKeyChange: (c) => {
        changes.push(`${c.expected}->${c.actual}`)
        return accept
      },
    })
    const bob = await peer('bob')
    const address = bob.addresses[0]!
    await alice.connect(address)
    const bobLeft = waitFor(alice, 'peer:disconnect')
    await bob.stop()
    await bobLeft
    // Someone else now answers at bob's address, with a valid handshake of its own key.
    const impostor = await peer('bob', { listen: address })
    const err = (await alice.connect(address).catch((e) => e)) as PeerError
    expect(err.code).toBe('KEY_CHANGED')
    expect(err.message).toContain(`${bob.id.slice(0, 4)}:${bob.id.slice(4, 8)}`)
    expect(err.message).toContain(`${impostor.id.slice(0, 4)}:${impostor.id.slice(4, 8)}`)
    expect(alice.peers().connected).toEqual([])
    accept = true
    await expect(alice.connect(address)).resolves.toMatchObject({ id: impostor.id })
    expect(knownPeers.check(address, impostor.id)).toEqual({ status: 'match' })
    expect(changes).toEqual([`${bob.id}->${impostor.id}`, `${bob.id}->${impostor.id}`])
  })

  it('a flipped bit in a ciphertext record closes that connection and delivers nothing of it', async () => {
    fresh()
    let armed = false
    const tamper = interceptTransport(current.make(), (bytes) => {
      if (!armed) return bytes
      armed = false
      const copy = Uint8Array.from(bytes)
      copy[copy.length >> 1]! ^= 0x04
      return copy
    })
    // No reconnect: the one copy of the message is the corrupted one, so nothing may arrive at all.
    const alice = await peer('alice', { transport: tamper, reconnect: false })
    const bob = await peer('bob')
    const carol = await peer('carol')
    await alice.connect(bob.addresses[0]!)
    await carol.connect(bob.addresses[0]!)
    const box = inbox(bob)
    const gone = waitFor(bob, 'peer:disconnect', (e) => e.peer.id === alice.id)
    armed = true
    const sent = alice.send(bob.id, 'this will be corrupted on the wire').catch((e: PeerError) => e)
    const event = await gone
    expect(event.reason).toBe('protocol-error')
    // The event carries no code; its message is what tells an integrity failure from a bad frame.
    expect(event.message).toMatch(/^a record failed authentication/)
    const outcome = await sent
    expect(outcome).toBeInstanceOf(Error)
    expect((outcome as PeerError).code).toBe('PEER_GONE')
    // Bob keeps serving others; Carol's message, sent after Alice's link closed, is the only one he got.
    await expect(carol.send(bob.id, 'still fine')).resolves.toMatchObject({ peerId: bob.id })
    expect(box.texts()).toEqual(['still fine'])
  })

  it('a replayed record is rejected', async () => {
    fresh()
    let armed = false
    const replay = interceptTransport(current.make(), (bytes) => {
      if (!armed) return bytes
      armed = false
      return Buffer.concat([bytes, bytes])
    })
    const alice = await peer('alice', { transport: replay })
    const bob = await peer('bob')
    await alice.connect(bob.addresses[0]!)
    const box = inbox(bob)
    const gone = waitFor(bob, 'peer:disconnect', (e) => e.peer.id === alice.id)
    armed = true
    void alice.send(bob.id, 'once only').catch(() => {})
    expect((await gone).reason).toBe('protocol-error')
    expect(box.texts()).toEqual(['once only'])
  })

  it('a listener drops a dialer that stalls the handshake', async () => {
    fresh()
    const silent = interceptTransport(current.make(), () => null)
    const alice = await peer('alice', { transport: silent })
    const bob = await peer('bob', { handshakeTimeout: 300 })
    const bobSaw = waitFor(bob, 'error', (e) => e.code === 'HANDSHAKE_TIMEOUT')
    const dialed = alice.connect(bob.addresses[0]!).catch((e: PeerError) => e)
    await bobSaw
    expect(((await dialed) as PeerError).code).toBe('HANDSHAKE_FAILED')
  })

  it('a dialer gives up on a listener that stalls the handshake', async () => {
    fresh()
    const silent = interceptTransport(current.make(), () => null)
    const alice = await peer('alice', { handshakeTimeout: 300 })
    const bob = await peer('bob', { transport: silent })
    const err = (await alice.connect(bob.addresses[0]!).catch((e) => e)) as PeerError
    expect(err.code).toBe('HANDSHAKE_TIMEOUT')
  })

  it('garbage instead of a handshake closes that connection without affecting other peers', async () => {
    fresh()
    const bob = await peer('bob')
    const carol = await peer('carol')
    await carol.connect(bob.addresses[0]!)
    const conn = await current.make().dial(bob.addresses[0]!)
    onTestFinished(() => conn.abort())
    const closed = once(conn, 'close')
    const failed = waitFor(bob, 'error', (e) => e.code === 'HANDSHAKE_FAILED')
    conn.send(Buffer.from('GET / HTTP/1.1\r\nHost: bob\r\n\r\n'.repeat(10)))
    await Promise.all([closed, failed])
    await expect(carol.send(bob.id, 'unaffected')).resolves.toMatchObject({ peerId: bob.id })
  })

  it('a peer claiming to be another peer cannot hide behind the handshake', async () => {
    fresh()
    const alice = await peer('alice')
    const bob = await peer('bob')
    await alice.connect(bob.addresses[0]!)
    // Mallory holds her own key but claims Alice's id in HELLO: refused, and Alice is unaffected.
    const mallory = createPeer({ transport: current.make(), listen: false, identity: generateIdentity() })
    Object.defineProperty(mallory, 'id', { value: alice.id })
    onTestFinished(() => mallory.stop())
    await mallory.start()
    const err = (await mallory.connect(bob.addresses[0]!).catch((e) => e)) as PeerError
    // Bob checks the claimed id against the key the handshake authenticated before anything else
    // (before asking whether Alice is already connected), so the refusal names exactly that.
    expect(err.code).toBe('IDENTITY_MISMATCH')
    expect(bob.peers().connected.map((c) => c.id)).toEqual([alice.id])
    await expect(alice.send(bob.id, 'still me')).resolves.toMatchObject({ peerId: bob.id })
  })
})

describe('wire capture over TCP', () => {
  it('bytes on the socket after the handshake contain none of the plaintext', async () => {
    const bob = createPeer({ name: 'bob', transport: tcpTransport() })
    onTestFinished(() => bob.stop())
    await bob.start()
    // A TCP proxy in the middle records every byte both ways.
    const captured: Buffer[] = []
    const sockets: Socket[] = []
    const proxy = createServer((client) => {
      const [host, port] = bob.addresses[0]!.split(':') as [string, string]
      const upstream = netConnect(Number(port), host)
      sockets.push(client, upstream)
      client.on('data', (d) => {
        captured.push(d)
        upstream.write(d)
      })
      upstream.on('data', (d) => {
        captured.push(d)
        client.write(d)
      })
      client.on('close', () => upstream.destroy())
      upstream.on('close', () => client.destroy())
    })
    proxy.listen(0, '127.0.0.1')
    await once(proxy, 'listening')
    onTestFinished(() => {
      for (const s of sockets) s.destroy()
      proxy.close()
    })
    const { port } = proxy.address() as { port: number }
    const alice = createPeer({ name: 'alice-the-sender', transport: tcpTransport() })
    onTestFinished(() => alice.stop())
    await alice.start()
    await alice.connect(`127.0.0.1:${port}`)
    const secret = 'the eagle lands at midnight'
    const got = waitFor(bob, 'message')
    await alice.send(bob.id, secret)
    expect((await got).text).toBe(secret)
    const wire = Buffer.concat(captured)
    expect(wire.length).toBeGreaterThan(200)
    expect(wire.includes(secret)).toBe(false)
    expect(wire.includes('alice-the-sender')).toBe(false)
    expect(wire.includes(Buffer.from(bob.id, 'hex'))).toBe(false)
  })
})
