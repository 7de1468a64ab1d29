import { once } from 'node:events'
import {
  type Connection,
  createPeer,
  memoryTransport,
  type Peer,
  type PeerError,
  type SendResult,
  tcpTransport,
} from '@parley/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createTestNetwork, inbox, type TestNetwork, waitFor } from '../src/index.js'
import { advance, fakeTimeNetwork, outcome, until } from './fixtures/fake-time.js'
import { secureClient } from './fixtures/secure-client.js'

// Limits as a user meets them: connection caps, per-host caps, the message rate, the frame size. The
// offender is cut off with a reason and refused for the cool-down; everyone else carries on.

const rawTransport = (net: TestNetwork, host: string) => memoryTransport(net.network, { host })

describe('message rate', () => {
  it('a peer over the rate is told why and cut off; its excess is REFUSED; it is DENIED during the cool-down', async () => {
    const net = await fakeTimeNetwork({
      size: 3,
      names: ['victim', 'flooder', 'honest'],
      peerInit: (i) => (i === 0 ? { rateLimit: { perSecond: 10, burst: 20 }, cooldown: 60_000 } : {}),
    })
    const [victim, flooder, honest] = net.peers as [Peer, Peer, Peer]
    await until(net.connect(flooder, victim))
    await until(net.connect(honest, victim))
    const box = inbox(victim)
    const victimSaw = waitFor(victim, 'peer:disconnect', (e) => e.peer.id === flooder.id)
    const flooderSaw = waitFor(flooder, 'peer:disconnect')
    const sends = Array.from({ length: 40 }, (_, i) => outcome(flooder.send(victim.id, `flood ${i}`)))
    const results = await until(Promise.all(sends))
    // The burst is accepted and acknowledged; the message that broke the limit is refused by name; the
    // rest never got an answer before the connection ended.
    expect(results.slice(0, 20).every((r) => 'ackedAt' in r)).toBe(true)
    expect(results[20]).toMatchObject({ code: 'REFUSED' })
    expect(results.slice(21).every((r) => (r as PeerError).code === 'PEER_GONE')).toBe(true)
    expect(box.messages).toHaveLength(20)
    expect(await until(victimSaw)).toMatchObject({
      reason: 'protocol-error',
      message: expect.stringMatching(/10 messages\/s/),
    })
    // The flooder is told why (and so does not keep redialing).
    expect(await until(flooderSaw)).toMatchObject({
      reason: 'goodbye',
      message: expect.stringMatching(/10 messages\/s/),
    })
    const denied = (await until(outcome(flooder.connect(net.address(victim))))) as PeerError
    expect(denied).toMatchObject({ code: 'DENIED', message: expect.stringMatching(/cooling down/) })
    // Nobody else noticed.
    await expect(until(honest.send(victim.id, 'all good?'))).resolves.toMatchObject({ peerId: victim.id })
    expect(victim.peers().connected.map((p) => p.name)).toEqual(['honest'])
    // After the cool-down it may come back.
    await advance(60_000)
    await expect(until(flooder.connect(net.address(victim)))).resolves.toMatchObject({ id: victim.id })
  })

  it('the token bucket refills: a steady sender under the rate is never cut off', async () => {
    const net = await fakeTimeNetwork({
      size: 2,
      peerInit: (i) => (i === 0 ? { rateLimit: { perSecond: 100, burst: 10 } } : {}),
    })
    const [victim, sender] = net.peers as [Peer, Peer]
    await until(net.connect(sender, victim))
    const drops: string[] = []
    victim.on('peer:disconnect', (e) => drops.push(e.reason))
    const sent: Array<Promise<SendResult>> = []
    // 8 messages every 100 ms: 80/s, under 100/s, for 3 s.
    for (let t = 0; t < 30; t++) {
      for (let i = 0; i < 8; i++) sent.push(sender.send(victim.id, `t${t}.${i}`))
      await advance(100)
    }
    await until(Promise.all(sent))
    expect(drops).toEqual([])
  })
})

describe('connection limits', () => {
  async function victimWith(init: Parameters<typeof createTestNetwork>[0]['peer']) {
    const net = await createTestNetwork({ size: 2, names: ['victim', 'honest'], peer: init })
    onTestFinished(() => net.stop())
    const [victim, honest] = net.peers as [Peer, Peer]
    return { net, victim, honest }
  }

  /** Opens `n` raw connections from `host` and reports which the victim closed at once. */
  async function flood(net: TestNetwork, victim: Peer, host: string, n: number) {
    const conns: Connection[] = []
    const transport = rawTransport(net, host)
    for (let i = 0; i < n; i++) {
      const conn = await transport.dial(victim.addresses[0]!)
      onTestFinished(() => conn.abort())
      conns.push(conn)
    }
    return conns
  }

  it('past maxInbound, a newcomer takes the slot of the least valuable inbound peer; useful peers stay', async () => {
    const { net, victim, honest } = await victimWith({ maxInbound: 5 })
    await net.connect(honest, victim)
    // honest has delivered something: that makes it useful, which eviction protects.
    await honest.send(victim.id, 'useful')
    const idlers: Peer[] = []
    for (let i = 0; i < 4; i++) {
      const idler = createPeer({
        name: `idler-${i}`,
        transport: rawTransport(net, `idler-${i}`),
        listen: false,
      })
      onTestFinished(() => idler.stop())
      await idler.start()
      await idler.connect(victim.addresses[0]!)
      idlers.push(idler)
    }
    expect(victim.resources().inboundSessions).toBe(5)
    const evicted = waitFor(victim, 'peer:disconnect')
    const late = createPeer({ name: 'late', transport: rawTransport(net, 'late'), listen: false })
    onTestFinished(() => late.stop())
    await late.start()
    await expect(late.connect(victim.addresses[0]!)).resolves.toMatchObject({ id: victim.id })
    expect((await evicted).peer.name).toMatch(/^idler-/)
    expect(victim.resources().inboundSessions).toBe(5)
    await expect(honest.send(victim.id, 'still served')).resolves.toMatchObject({ peerId: victim.id })
    await expect(late.send(victim.id, 'and the newcomer')).resolves.toMatchObject({ peerId: victim.id })
    // The victim can still dial out: outbound connections have their own budget.
    const other = createPeer({ name: 'other', transport: rawTransport(net, 'other'), listen: 'other:0' })
    onTestFinished(() => other.stop())
    await other.start()
    await expect(victim.connect(other.addresses[0]!)).resolves.toMatchObject({ id: other.id })
  })

  it('when every inbound peer is protected, a newcomer is refused with TOO_MANY_CONNECTIONS', async () => {
    const { net, victim, honest } = await victimWith({ maxInbound: 1 })
    await net.connect(honest, victim)
    await honest.send(victim.id, 'useful')
    const late = createPeer({ name: 'late', transport: rawTransport(net, 'late'), listen: false })
    onTestFinished(() => late.stop())
    await late.start()
    await expect(late.connect(victim.addresses[0]!)).rejects.toMatchObject({ code: 'TOO_MANY_CONNECTIONS' })
    await expect(honest.send(victim.id, 'still here')).resolves.toMatchObject({ peerId: victim.id })
  })

  it('past maxPerHost, one host cannot take more; other hosts are unaffected', async () => {
    const { net, victim, honest } = await victimWith({ maxPerHost: 3 })
    const refused: PeerError[] = []
    victim.on('error', (e) => e.code === 'TOO_MANY_CONNECTIONS' && refused.push(e))
    const conns = await flood(net, victim, 'greedy', 5)
    await Promise.all(conns.slice(3).map((c) => once(c, 'close')))
    expect(conns.slice(0, 3).every((c) => c.status === 'open')).toBe(true)
    expect(refused.map((e) => e.message)).toEqual([
      expect.stringMatching(/3 connections from greedy/),
      expect.stringMatching(/3 connections from greedy/),
    ])
    await net.connect(honest, victim)
    await expect(honest.send(victim.id, 'different host')).resolves.toMatchObject({ peerId: victim.id })
  })

  it('loopback is exempt from maxPerHost: peers on one machine all connect over TCP', async () => {
    const net = await createTestNetwork({ size: 5, transport: tcpTransport(), peer: { maxPerHost: 2 } })
    onTestFinished(() => net.stop())
    await net.star()
    expect(net.peers[0]!.peers().connected).toHaveLength(4)
  })

  it('past maxOutbound, connect() fails with TOO_MANY_CONNECTIONS', async () => {
    const net = await createTestNetwork({ size: 4, peerInit: (i) => (i === 0 ? { maxOutbound: 2 } : {}) })
    onTestFinished(() => net.stop())
    const [a, ...rest] = net.peers as [Peer, Peer, Peer, Peer]
    await a.connect(net.address(rest[0]!))
    await a.connect(net.address(rest[1]!))
    await expect(a.connect(net.address(rest[2]!))).rejects.toMatchObject({ code: 'TOO_MANY_CONNECTIONS' })
    // Inbound is a separate budget.
    await net.connect(rest[2]!, a)
    expect(a.peers().connected).toHaveLength(3)
  })
})

describe('frame size', () => {
  it('a length prefix over maxFrameSize closes that connection only, and cools its peer down', async () => {
    const net = await createTestNetwork({
      size: 2,
      names: ['victim', 'honest'],
      peerInit: (i) => (i === 0 ? { maxFrameSize: 1_024 } : {}),
    })
    onTestFinished(() => net.stop())
    const [victim, honest] = net.peers as [Peer, Peer]
    await net.connect(honest, victim)
    const client = await secureClient(rawTransport(net, 'big'), victim.addresses[0]!)
    onTestFinished(() => client.conn.abort())
    client.send(client.hello())
    await client.next('WELCOME')
    const reported = waitFor(victim, 'error', (e) => e.code === 'REJECTED')
    // A prefix announcing 1,025 bytes: refused from the prefix alone, before buffering the body.
    client.sendRaw(Uint8Array.from([0, 0, 4, 1, 0x10]))
    expect((await reported).cause).toMatchObject({ code: 'FRAME_TOO_LARGE' })
    await client.closed
    await expect(honest.send(victim.id, 'unaffected')).resolves.toMatchObject({ peerId: victim.id })
    // Same key again, within the cool-down: refused at HELLO.
    const again = await secureClient(rawTransport(net, 'big'), victim.addresses[0]!, {
      identity: client.identity,
    })
    onTestFinished(() => again.conn.abort())
    again.send(again.hello())
    expect(await again.next('REJECT')).toMatchObject({ reason: expect.stringMatching(/cooling down/) })
  })

  it('a frame exactly at maxFrameSize is accepted', async () => {
    const net = await createTestNetwork({
      size: 2,
      peerInit: (i) => (i === 0 ? { maxFrameSize: 1_024 } : {}),
    })
    onTestFinished(() => net.stop())
    const [victim, sender] = net.peers as [Peer, Peer]
    await net.connect(sender, victim)
    // TEXT frame body: channel (1) + type (1) + id (16) + sentAt (8) + u16 length (2) + text: 1,024 - 28 = 996.
    await expect(sender.send(victim.id, 'x'.repeat(996))).resolves.toMatchObject({ peerId: victim.id })
  })
})
