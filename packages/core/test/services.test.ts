import { frameMessage } from '@parley/protocol'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createPeer } from '../src/peer.js'
import type { PeerError } from '../src/peer-errors.js'
import type { PeerInit } from '../src/peer-types.js'
import type { Channel, Service, ServiceHandler } from '../src/services/service.js'
import { memoryNetwork, memoryTransport } from '../src/transports/memory.js'
import { memoryPeer } from './fixtures/memory-peer.js'
import { rawClient } from './fixtures/raw-client.js'

/** A service that echoes every body it gets, prefixed with "echo:". */
function echoService(seen: string[]): Service {
  return {
    protocol: 'test/echo/1',
    open(channel: Channel): ServiceHandler {
      return {
        onFrame(body) {
          const text = Buffer.from(body).toString()
          seen.push(`${channel.peer.name}:${text}`)
          if (!text.startsWith('echo:')) channel.sendBytes(Buffer.from(`echo:${text}`))
        },
        onClose() {},
      }
    },
  }
}

async function pair(a: Partial<PeerInit>, b: Partial<PeerInit>) {
  const network = memoryNetwork()
  const alice = memoryPeer(network, 'alice', a)
  const bob = memoryPeer(network, 'bob', b)
  await Promise.all([alice.start(), bob.start()])
  return { network, alice, bob }
}

describe('services', () => {
  it('an application service gets a channel of its own on every session, beside chat', async () => {
    const seenA: string[] = []
    const seenB: string[] = []
    let channelToBob: Channel | undefined
    const spy: Service = {
      protocol: 'test/echo/1',
      open(channel) {
        channelToBob = channel
        return echoService(seenA).open(channel)
      },
    }
    const { alice, bob } = await pair({ services: [spy] }, { services: [echoService(seenB)] })
    await alice.connect(bob.addresses[0]!)
    channelToBob!.sendBytes(Buffer.from('hello'))
    await expect(alice.send(bob.id, 'chat still works')).resolves.toMatchObject({ peerId: bob.id })
    await expect.poll(() => seenA).toEqual(['bob:echo:hello'])
    expect(seenB).toEqual(['alice:hello'])
  })

  it('a service only one side runs gets no channel; chat is unaffected', async () => {
    const opened: string[] = []
    const only: Service = {
      protocol: 'test/only-alice/1',
      open(channel) {
        opened.push(channel.peer.name)
        return { onFrame() {}, onClose() {} }
      },
    }
    const { alice, bob } = await pair({ services: [only] }, {})
    await alice.connect(bob.addresses[0]!)
    await expect(alice.send(bob.id, 'hi')).resolves.toMatchObject({ peerId: bob.id })
    expect(opened).toEqual([])
  })

  it('a service handler is told when its session ends', async () => {
    const closed: string[] = []
    const watcher: Service = {
      protocol: 'test/watch/1',
      open: () => ({ onFrame() {}, onClose: (err: PeerError) => closed.push(err.code) }),
    }
    const { alice, bob } = await pair({ services: [watcher] }, { services: [watcher] })
    await alice.connect(bob.addresses[0]!)
    await alice.disconnect(bob.id)
    await expect.poll(() => closed).toEqual(['PEER_GONE', 'PEER_GONE'])
  })
})

describe('per-peer bounds on the wire', () => {
  it('a frame on a channel that was not opened ends the session with a reason', async () => {
    const c = await rawClient({})
    c.conn.send(frameMessage({ type: 'PEERS_REQUEST' }, { channel: 7 }))
    await c.closed
    expect(c.inbox.at(-1)).toMatchObject({ type: 'GOODBYE', reason: expect.stringMatching(/channel 7/) })
  })

  it('a message of another service on a channel is a violation', async () => {
    const c = await rawClient({})
    // PEERS_REQUEST belongs to peer exchange (channel 2), not chat (channel 1).
    c.conn.send(frameMessage({ type: 'PEERS_REQUEST' }, { channel: 1 }))
    await c.closed
    expect(c.inbox.at(-1)).toMatchObject({ type: 'GOODBYE', reason: expect.stringMatching(/chat channel/) })
  })

  it('a partial frame past the per-peer memory bound is cut off with LIMIT_EXCEEDED, whatever the chunking', async () => {
    const c = await rawClient({ maxPeerMemory: 64 * 1024 })
    // Announce a legal 1 MiB frame, then trickle its body in 1 KiB pieces.
    const prefix = Buffer.alloc(4)
    prefix.writeUInt32BE(1024 * 1024 - 1)
    c.conn.send(prefix)
    const piece = Buffer.alloc(1024, 1)
    for (let i = 0; i < 200 && c.conn.status === 'open'; i++) {
      c.conn.send(piece)
      await new Promise((r) => setImmediate(r))
    }
    await c.closed
    expect(c.errors.map((e) => e.code)).toContain('LIMIT_EXCEEDED')
    expect(c.peer.resources().heldBytes).toBe(0)
  })
})

describe('listening on several addresses', () => {
  it('accepts on each and announces all of them; stop closes every listener', async () => {
    const network = memoryNetwork()
    const multi = createPeer({
      transport: memoryTransport(network, { host: 'multi' }),
      listen: ['multi:0', 'multi:0'],
    })
    await multi.start()
    expect(multi.addresses).toHaveLength(2)
    for (const [i, address] of multi.addresses.entries()) {
      const dialer = createPeer({ transport: memoryTransport(network, { host: `d${i}` }), listen: false })
      onTestFinished(() => dialer.stop())
      await dialer.start()
      await expect(dialer.connect(address)).resolves.toMatchObject({ id: multi.id })
    }
    await multi.stop()
    const late = createPeer({ transport: memoryTransport(network, { host: 'late' }), listen: false })
    onTestFinished(() => late.stop())
    await late.start()
    for (const address of multi.addresses)
      await expect(late.connect(address)).rejects.toMatchObject({ code: 'DIAL_FAILED' })
  })
})

describe('cancelling shutdown with an AbortSignal', () => {
  it('stop() gives up waiting for acknowledgements when its signal aborts, and still ends stopped', async () => {
    const network = memoryNetwork()
    const alice = createPeer({
      transport: memoryTransport(network, { host: 'a' }),
      listen: 'a:0',
      stopTimeout: 60_000,
    })
    const bob = createPeer({ transport: memoryTransport(network, { host: 'b' }), listen: 'b:0' })
    onTestFinished(() => bob.stop())
    await Promise.all([alice.start(), bob.start()])
    await alice.connect(bob.addresses[0]!)
    network.partition('a', 'b')
    const unanswered = alice.send(bob.id, 'never acknowledged').catch((e: PeerError) => e.code)
    const controller = new AbortController()
    const stopped = alice.stop({ signal: controller.signal })
    controller.abort()
    await stopped
    expect(alice.status).toBe('stopped')
    expect(await unanswered).toBe('PEER_GONE')
  })
})
