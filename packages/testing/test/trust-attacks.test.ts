import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { connect, createServer, type Server } from 'node:net'
import {
  createPeer,
  generateIdentity,
  memoryKnownPeers,
  type Peer,
  type PeerError,
  type PeerInit,
  tcpTransport,
} from '@parley/core'
import type { PeerRecord } from '@parley/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { interceptTransport, waitFor } from '../src/index.js'
import { secureClient } from './fixtures/secure-client.js'

// Issue "Trust under attack": each attack, over TCP on 127.0.0.1 against real peers, fails for the attacker.

const running: Array<{ stop(): Promise<void> } | Server> = []
afterEach(async () => {
  for (const r of running.splice(0).reverse()) {
    if ('stop' in r) await r.stop()
    else await new Promise<void>((resolve) => r.close(() => resolve()))
  }
})

async function peer(name: string, init: Partial<PeerInit> = {}): Promise<Peer> {
  const p = createPeer({ transport: tcpTransport(), name, listen: '127.0.0.1:0', ...init })
  running.push(p)
  await p.start()
  return p
}

describe('trust under attack, over TCP', () => {
  it('1. an address claim does not hijack sends: the address reaches the key pinned for it, or nothing', async () => {
    const alice = await peer('alice', { knownPeers: memoryKnownPeers(), reconnect: false })
    const bob = await peer('bob')
    const bobAddress = bob.addresses[0]!
    await alice.connect(bobAddress)
    const bobLeft = waitFor(alice, 'peer:disconnect')
    await bob.stop()
    await bobLeft
    // Mallory dials in as "bob", claiming bob's address as her own.
    const mallory = await peer('bob', { announce: [bobAddress] })
    const stolen: string[] = []
    mallory.on('message', (m) => stolen.push(m.text))
    await mallory.connect(alice.addresses[0]!)
    await expect(alice.connect(bobAddress)).rejects.toMatchObject({ code: 'DIAL_FAILED' })
    await expect(alice.send(bobAddress, 'secret')).rejects.toMatchObject({ code: 'DIAL_FAILED' })
    await expect(alice.send('bob', 'secret')).rejects.toMatchObject({ code: 'NOT_CONNECTED' })
    expect(stolen).toEqual([])
  })

  it('2. no silent key change in either direction: dials are refused, inbound claims reported with both fingerprints', async () => {
    const known = memoryKnownPeers()
    const alice = await peer('alice', { knownPeers: known })
    const errors: PeerError[] = []
    alice.on('error', (e) => errors.push(e))
    const bob = await peer('bob')
    const bobAddress = bob.addresses[0]!
    await alice.connect(bobAddress)
    await alice.disconnect(bob.id)
    await bob.stop()
    // A new key now listens at bob's address: the dial is refused (the library default), loudly.
    const impostor = await peer('bob', { listen: bobAddress })
    await expect(alice.connect(bobAddress)).rejects.toMatchObject({ code: 'KEY_CHANGED' })
    expect(alice.peers().connected).toEqual([])
    // And when it dials in claiming the address, the user hears of it, with both fingerprints.
    const reported = waitFor(alice, 'error', (e) => e.code === 'KEY_CHANGED')
    await impostor.connect(alice.addresses[0]!)
    await reported
    const report = errors.find((e) => e.code === 'KEY_CHANGED')!.message
    expect(report).toContain(bob.id.slice(0, 4))
    expect(report).toContain(impostor.id.slice(0, 4))
  })

  it('3. peer exchange cannot be steered: no renaming, no eternal entries, no dial storm', async () => {
    const alice = await peer('alice')
    const bob = await peer('bob')
    await alice.connect(bob.addresses[0]!)
    // Ports the attacker wants alice to dial: count every connection they get.
    let dialed = 0
    const sink = createServer((socket) => {
      dialed++
      socket.destroy()
    })
    running.push(sink)
    sink.listen(0, '127.0.0.1')
    await once(sink, 'listening')
    const port = (sink.address() as { port: number }).port
    const mallory = await secureClient(tcpTransport(), alice.addresses[0]!)
    running.push({ stop: async () => mallory.conn.abort() })
    mallory.send(mallory.hello('mallory'))
    await mallory.next('WELCOME')
    const poison: PeerRecord[] = [
      { peerId: bob.id, name: 'not-bob', addrs: [`127.0.0.1:${port}`], lastSeen: 2 ** 53 - 1 },
      ...Array.from({ length: 127 }, () => ({
        peerId: generateIdentity().peerId,
        name: 'sybil',
        addrs: Array.from({ length: 16 }, () => `127.0.0.1:${port}`),
        lastSeen: 2 ** 53 - 1,
      })),
    ]
    // Answer alice's requests with the poisoned list.
    const answering = (async () => {
      // Alice asks once for the query and once per round of connectToActive; a few more to spare.
      for (let i = 0; i < 8; i++) {
        await mallory.next('PEERS_REQUEST', 10_000)
        mallory.send({ type: 'PEERS', peers: poison })
      }
    })().catch(() => {})
    await alice.queryPeers(mallory.identity.peerId)
    const bobEntry = alice.peers().connected.find((p) => p.id === bob.id)!
    expect(bobEntry.name).toBe('bob')
    const known = alice.peers().known
    expect(known.length).toBeLessThanOrEqual(32)
    expect(known.every((k) => k.lastSeen <= Date.now())).toBe(true)
    await alice.connectToActive({ rounds: 1 })
    // At most two addresses for each of at most 32 entries from one source.
    expect(dialed).toBeLessThanOrEqual(64)
    mallory.conn.abort()
    await answering
  })

  it('4. a private network hides its members: without the secret a handshake reveals nothing', async () => {
    const member = await peer('member', { networkSecret: 'our little secret' })
    const [host, port] = [member.addresses[0]!.split(':')[0]!, Number(member.addresses[0]!.split(':')[1])]
    // An outsider's first message, as plain XX (32 bytes) and as XXpsk0 made with a guessed key (48 bytes).
    for (const first of [
      Buffer.concat([Buffer.from([0, 32]), randomBytes(32)]),
      Buffer.concat([Buffer.from([0, 48]), randomBytes(48)]),
    ]) {
      const socket = connect(port, host)
      const received: Buffer[] = []
      socket.on('data', (chunk) => received.push(chunk))
      socket.on('error', () => {}) // the member resets the connection: that is the point
      const closed = new Promise((resolve) => socket.on('close', resolve))
      await new Promise((resolve) => socket.once('connect', resolve))
      socket.write(first)
      await closed
      // Message 2 (the member's static key and identity) is never sent to someone without the secret.
      expect(Buffer.concat(received)).toHaveLength(0)
    }
    // A real Parley peer without the secret fails the handshake, and learns no peer id either.
    const outsider = await peer('outsider')
    await expect(outsider.connect(member.addresses[0]!)).rejects.toMatchObject({ code: 'HANDSHAKE_FAILED' })
    // With the secret, it works.
    const insider = await peer('insider', { networkSecret: 'our little secret' })
    await expect(insider.connect(member.addresses[0]!)).resolves.toMatchObject({ id: member.id })
  })

  it('6. dedup cannot be flushed by cycling cheap identities while a sender reconnects', async () => {
    // The victim's transport can lose its next write and the connection with it: a lost acknowledgement.
    let loseNextWrite = false
    const lossy = interceptTransport(tcpTransport(), (bytes, _i, conn) => {
      if (!loseNextWrite) return bytes
      loseNextWrite = false
      conn.abort()
      return null
    })
    const victim = await peer('victim', { transport: lossy, rateLimit: false })
    // The sender redials only when told to, after the flood.
    const sender = await peer('sender', { reconnect: { initialDelay: 600_000 }, ackTimeout: 120_000 })
    const texts: string[] = []
    victim.on('message', (m) => {
      if (m.from.id !== sender.id) return
      texts.push(m.text)
      loseNextWrite = true
    })
    await sender.connect(victim.addresses[0]!)
    const cut = waitFor(sender, 'peer:disconnect')
    const sent = sender.send(victim.id, 'exactly once')
    await cut
    expect(texts).toEqual(['exactly once'])
    // 1,030 throwaway identities each deliver a message: each one a new sender in the victim's dedup state.
    for (let i = 0; i < 1_030; i++) {
      const throwaway = createPeer({ transport: tcpTransport(), listen: false })
      await throwaway.start()
      await throwaway.send(victim.addresses[0]!, `junk ${i}`)
      await throwaway.stop()
    }
    // The sender comes back and re-sends what was never acknowledged: acknowledged, not delivered again.
    await sender.connect(victim.addresses[0]!)
    await expect(sent).resolves.toMatchObject({ peerId: victim.id })
    expect(texts).toEqual(['exactly once'])
  }, 120_000)
})
