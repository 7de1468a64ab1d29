import { memoryTransport, type Peer, type PeerError, type ReconnectingEvent } from '@parley/core'
import { AckStatus, type TextMessage } from '@parley/protocol'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { createTestNetwork, inbox, type TestNetwork, waitFor } from '../src/index.js'
import { advance, fakeTimeNetwork, outcome, until } from './fixtures/fake-time.js'
import { secureClient } from './fixtures/secure-client.js'

// Acknowledged delivery as a user sees it: every send settles, with a result or a reason; the outbox
// survives a reconnection; nothing arrives twice; liveness and backpressure. Fake clocks, no sleeps.

const hostOf = (p: Peer) => p.addresses[0]!.split(':')[0]!

/** A transport for hand-driven clients on the harness's memory network, from their own host. */
const rawTransport = (net: TestNetwork) => memoryTransport(net.network, { host: 'raw-client' })

/** A hand-driven client that has completed the secure handshake and HELLO/WELCOME with `peer`. */
async function helloClient(net: TestNetwork, peer: Peer) {
  const client = await until(secureClient(rawTransport(net), peer.addresses[0]!))
  onTestFinished(() => client.conn.abort())
  client.send(client.hello())
  await until(client.next('WELCOME'))
  return client
}

describe('acknowledged delivery', () => {
  it('send() resolves only once the receiver has the message', async () => {
    const net = await createTestNetwork({ size: 2 })
    onTestFinished(() => net.stop())
    const [a, b] = net.peers as [Peer, Peer]
    await net.connect(a, b)
    const box = inbox(b)
    const result = await a.send(b.id, 'are you there?')
    expect(box.messages).toEqual([expect.objectContaining({ id: result.id, text: 'are you there?' })])
    expect(result).toMatchObject({ peerId: b.id })
  })

  it('rejects with ACK_TIMEOUT when the receiver stops answering', async () => {
    const net = await fakeTimeNetwork({ size: 2, peer: { ackTimeout: 2_000, idleTimeout: 60_000 } })
    const [a, b] = net.peers as [Peer, Peer]
    await until(net.connect(a, b))
    net.partition(a, b)
    const sent = outcome(a.send(b.id, 'into the void'))
    await advance(1_500)
    expect(await Promise.race([sent, 'pending'])).toBe('pending')
    await advance(1_000)
    expect(await sent).toMatchObject({ code: 'ACK_TIMEOUT' })
  })

  it('rejects with PEER_GONE when the receiver dies before acknowledging', async () => {
    const net = await fakeTimeNetwork({ size: 2 })
    const [a, b] = net.peers as [Peer, Peer]
    // b dialed a: a will not try to reconnect, so the loss is final for a.
    await until(net.connect(b, a))
    const sent = outcome(a.send(b.id, 'too late'))
    net.kill(b)
    await advance(100)
    expect(await sent).toMatchObject({ code: 'PEER_GONE' })
  })

  it('rejects with QUEUE_FULL at once beyond the waiting budget; the rest settle later', async () => {
    const net = await fakeTimeNetwork({
      size: 2,
      peer: { ackTimeout: 1_000, idleTimeout: 60_000, inFlight: { messages: 2, waiting: 3 } },
    })
    const [a, b] = net.peers as [Peer, Peer]
    await until(net.connect(a, b))
    net.partition(a, b)
    const sends = Array.from({ length: 8 }, (_, i) => outcome(a.send(b.id, `m${i}`)))
    // 2 in flight, 3 waiting for room, 3 refused on the spot (no clock needed).
    const refused = await Promise.all(sends.slice(5))
    expect(refused.map((o) => (o as PeerError).code)).toEqual(['QUEUE_FULL', 'QUEUE_FULL', 'QUEUE_FULL'])
    await advance(5_000)
    const all = await Promise.all(sends)
    expect(all.map((o) => (o as PeerError).code)).toEqual([
      ...Array(5).fill('ACK_TIMEOUT'),
      ...Array(3).fill('QUEUE_FULL'),
    ])
  })

  it('a message to a reconnecting peer waits in the outbox and is delivered after reconnection', async () => {
    const net = await fakeTimeNetwork({
      size: 2,
      peer: { reconnect: { initialDelay: 200, maxDelay: 1_000 } },
    })
    const [a, b] = net.peers as [Peer, Peer]
    await until(net.connect(a, b))
    const box = inbox(b)
    const attempts: ReconnectingEvent[] = []
    a.on('peer:reconnecting', (e) => attempts.push(e))
    const lost = waitFor(a, 'peer:disconnect')
    // The cable is cut and the connection dropped: a notices at once, and cannot dial back yet.
    net.partition(a, b)
    net.network.dropConnections(hostOf(b))
    expect(await until(lost)).toMatchObject({ reason: 'connection-lost' })
    const sent = outcome(a.send(b.id, 'wait for me'))
    await advance(1_500)
    expect(attempts.length).toBeGreaterThanOrEqual(2)
    expect(box.messages).toEqual([])
    expect(await Promise.race([sent, 'pending'])).toBe('pending')
    const back = waitFor(a, 'peer:connect', (p) => p.id === b.id)
    net.heal()
    await until(back)
    expect(await until(sent)).toMatchObject({ peerId: b.id })
    expect(box.texts()).toEqual(['wait for me'])
  })

  it('a message whose ACK was lost is resent on the new connection and delivered once', async () => {
    const net = await fakeTimeNetwork({ size: 2, peer: { reconnect: { initialDelay: 100 } } })
    const [a, b] = net.peers as [Peer, Peer]
    await until(net.connect(a, b))
    const box = inbox(b)
    // b gets the message, then the connection dies before b's ACK leaves (it is flushed a tick later).
    b.once('message', () => net.network.dropConnections(hostOf(b)))
    const reconnected = waitFor(a, 'peer:connect')
    const sent = a.send(b.id, 'exactly once')
    await until(reconnected)
    expect(await until(sent)).toMatchObject({ peerId: b.id })
    expect(box.texts()).toEqual(['exactly once'])
    expect(a.peers().connected.map((p) => p.id)).toEqual([b.id])
  })
})

describe('reconnection', () => {
  it('backs off exponentially with jitter, capped, then gives up and fails the outbox', async () => {
    const policy = { initialDelay: 100, maxDelay: 1_000, maxAttempts: 6 }
    const net = await fakeTimeNetwork({ size: 2, peer: { reconnect: policy, ackTimeout: 60_000 } })
    const [a, b] = net.peers as [Peer, Peer]
    await until(net.connect(a, b))
    const attempts: ReconnectingEvent[] = []
    a.on('peer:reconnecting', (e) => attempts.push(e))
    const lost = waitFor(a, 'peer:disconnect')
    net.kill(b)
    await until(lost)
    const sent = outcome(a.send(b.id, 'anyone?'))
    await advance(10_000)
    const ceilings = [100, 200, 400, 800, 1_000, 1_000]
    expect(attempts.map((e) => e.attempt)).toEqual([1, 2, 3, 4, 5, 6])
    attempts.forEach((e, i) => {
      expect(e).toMatchObject({ id: b.id, name: b.name })
      expect(e.delay).toBeGreaterThanOrEqual(ceilings[i]! / 2)
      expect(e.delay).toBeLessThanOrEqual(ceilings[i]!)
    })
    expect(await sent).toMatchObject({ code: 'PEER_GONE', message: expect.stringMatching(/gave up/) })
    expect(a.peers().connected).toEqual([])
  })

  it('stops when this peer stops, leaving no timer or connection behind', async () => {
    const net = await fakeTimeNetwork({ size: 2, peer: { reconnect: { initialDelay: 500 } } })
    const [a, b] = net.peers as [Peer, Peer]
    await until(net.connect(a, b))
    const first = waitFor(a, 'peer:reconnecting')
    net.kill(b)
    await until(first)
    const attempts: ReconnectingEvent[] = []
    a.on('peer:reconnecting', (e) => attempts.push(e))
    const sent = outcome(a.send(b.id, 'never'))
    await until(a.stop())
    expect(await sent).toMatchObject({ code: 'PEER_GONE' })
    expect(vi.getTimerCount()).toBe(0)
    expect(net.network.connections).toBe(0)
    await advance(60_000)
    expect(attempts).toEqual([])
  })

  it('gets through after a partition even when the other side still holds the dead connection', async () => {
    // a notices the partition quickly; b (slower heartbeat) still holds the old connection when the
    // cable is back, so b keeps it and retires a's new one as a duplicate. a must keep trying until b
    // lets go of the dead one, not give up on b for good.
    const net = await fakeTimeNetwork({
      size: 2,
      peer: { ackTimeout: 120_000, reconnect: { initialDelay: 200, maxDelay: 4_000, maxAttempts: 20 } },
      peerInit: (i) =>
        i === 0 ? { pingInterval: 1_000, idleTimeout: 3_000 } : { pingInterval: 5_000, idleTimeout: 20_000 },
    })
    const [a, b] = net.peers as [Peer, Peer]
    await until(net.connect(a, b))
    const box = inbox(b)
    const lost = waitFor(a, 'peer:disconnect')
    net.partition(a, b)
    expect(await until(lost)).toMatchObject({ reason: 'timeout' })
    const sent = outcome(a.send(b.id, 'after the storm'))
    // a's reset of the dead connection is lost in the partition: b never hears of it.
    await advance(100)
    net.heal()
    await advance(60_000)
    expect(await sent).toMatchObject({ peerId: b.id })
    expect(box.texts()).toEqual(['after the storm'])
    expect(a.peers().connected.map((p) => p.id)).toEqual([b.id])
    expect(b.peers().connected.map((p) => p.id)).toEqual([a.id])
  })

  it("stops on the remote's GOODBYE", async () => {
    const net = await fakeTimeNetwork({ size: 2, peer: { reconnect: { initialDelay: 100 } } })
    const [a, b] = net.peers as [Peer, Peer]
    await until(net.connect(a, b))
    const attempts: ReconnectingEvent[] = []
    a.on('peer:reconnecting', (e) => attempts.push(e))
    const gone = waitFor(a, 'peer:disconnect')
    await until(b.stop())
    expect(await until(gone)).toMatchObject({ reason: 'goodbye' })
    await advance(60_000)
    expect(attempts).toEqual([])
    await expect(a.send(b.id, 'hello?')).rejects.toMatchObject({ code: 'NOT_CONNECTED' })
  })
})

describe('liveness', () => {
  it('pings a silent peer, then declares it dead after idleTimeout with reason timeout', async () => {
    const net = await fakeTimeNetwork({ size: 1, peer: { pingInterval: 1_000, idleTimeout: 3_000 } })
    const a = net.peers[0]!
    const client = await helloClient(net, a)
    const gone = waitFor(a, 'peer:disconnect')
    await advance(1_500)
    expect(client.counts.get('PING')).toBe(1)
    await advance(1_000)
    expect(a.peers().connected.map((p) => p.id)).toEqual([client.identity.peerId])
    await advance(1_000)
    expect(await gone).toMatchObject({ reason: 'timeout', message: expect.stringMatching(/no answer/) })
    await until(client.closed)
  })

  it('keeps an idle peer that answers pings', async () => {
    const net = await fakeTimeNetwork({ size: 2, peer: { pingInterval: 1_000, idleTimeout: 3_000 } })
    const [a, b] = net.peers as [Peer, Peer]
    await until(net.connect(a, b))
    const drops: string[] = []
    a.on('peer:disconnect', (e) => drops.push(e.reason))
    b.on('peer:disconnect', (e) => drops.push(e.reason))
    await advance(30_000)
    expect(drops).toEqual([])
    await expect(until(a.send(b.id, 'still here'))).resolves.toMatchObject({ peerId: b.id })
  })
})

describe('backpressure', () => {
  it('a slow reader makes send() wait: never more than the in-flight budget is unacknowledged', async () => {
    const budget = 3
    const net = await fakeTimeNetwork({ size: 1, peer: { inFlight: { messages: budget } } })
    const a = net.peers[0]!
    const reader = await helloClient(net, a)
    const sends = Array.from({ length: 12 }, (_, i) => a.send(reader.identity.peerId, `m${i}`))
    const unacked: TextMessage[] = []
    const seen: number[] = []
    for (let step = 0; step < 12; step++) {
      // Let the clock run well past a round trip: whatever a would send without an ACK is here by now.
      await advance(50)
      for (let i = reader.inbox.findIndex((m) => m.type === 'TEXT'); i >= 0; ) {
        unacked.push(reader.inbox.splice(i, 1)[0] as TextMessage)
        i = reader.inbox.findIndex((m) => m.type === 'TEXT')
      }
      seen.push(unacked.length)
      // The reader acknowledges one message per step.
      const { stream, seq } = unacked.shift()!
      reader.send({ type: 'ACK', stream, seq, status: AckStatus.DELIVERED })
    }
    await until(Promise.all(sends))
    expect(seen).toEqual([3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 1])
  })

  it('a reader that stops reading costs a bounded queue and is dropped after idleTimeout', async () => {
    const net = await fakeTimeNetwork({
      size: 1,
      peer: {
        pingInterval: 1_000,
        idleTimeout: 3_000,
        ackTimeout: 60_000,
        inFlight: { bytes: 256 * 1024, waiting: 4 },
      },
    })
    const a = net.peers[0]!
    const reader = await helloClient(net, a)
    reader.conn.pause()
    const big = 'x'.repeat(60_000)
    const sends = Array.from({ length: 20 }, () => outcome(a.send(reader.identity.peerId, big)))
    const gone = waitFor(a, 'peer:disconnect')
    // The reader still talks (so it is not silent), it just never reads.
    for (let t = 0; t < 4_000; t += 500) {
      reader.send({ type: 'PING', nonce: t })
      await advance(500)
    }
    expect(await gone).toMatchObject({ reason: 'timeout', message: expect.stringMatching(/stopped reading/) })
    const codes = (await Promise.all(sends)).map((o) => (o as PeerError).code)
    // 5 texts fit the 256 KiB budget (it is checked before each one), 4 more waited, the rest were refused.
    expect(codes.filter((c) => c === 'PEER_GONE')).toHaveLength(9)
    expect(codes.filter((c) => c === 'QUEUE_FULL')).toHaveLength(11)
  })
})

describe('handshake deadlines', () => {
  it('an established connection keeps no handshake timer: timers do not grow with connections', async () => {
    const net = await fakeTimeNetwork({ size: 5 })
    const [a, ...others] = net.peers as [Peer, ...Peer[]]
    const before = vi.getTimerCount()
    for (const o of others) await until(net.connect(a, o))
    await advance(100)
    expect(vi.getTimerCount()).toBe(before)
  })
})
