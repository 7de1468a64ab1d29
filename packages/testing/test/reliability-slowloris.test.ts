import { type Connection, createPeer, memoryTransport, type Peer } from '@parley/core'
import { frameMessage } from '@parley/protocol'
import { describe, expect, it, onTestFinished } from 'vitest'
import { type TestNetwork, waitFor } from '../src/index.js'
import { advance, fakeTimeNetwork, outcome, until } from './fixtures/fake-time.js'
import { secureClient } from './fixtures/secure-client.js'

// Slow-loris and connection floods against a peer on a fake clock: attackers trickle one byte per
// interval, or hold every inbound slot. The victim drops them at the handshake timeout and keeps
// serving honest peers throughout.

const HANDSHAKE_TIMEOUT = 2_000
const BYTE_EVERY = 100

/** The first Noise handshake message a dialer sends: a u16 length prefix of 32, then 32 key bytes. */
const noiseFirstMessage = Buffer.concat([Buffer.from([0, 32]), Buffer.alloc(32, 7)])

async function victimNetwork(peerInit: Record<string, unknown> = {}) {
  const net = await fakeTimeNetwork({
    size: 2,
    names: ['victim', 'honest'],
    peer: { handshakeTimeout: HANDSHAKE_TIMEOUT },
    peerInit: (i) => (i === 0 ? peerInit : {}),
  })
  const [victim, honest] = net.peers as [Peer, Peer]
  await until(net.connect(honest, victim))
  return { net, victim, honest }
}

async function rawDial(net: TestNetwork, host: string, to: Peer): Promise<Connection> {
  const conn = await until(memoryTransport(net.network, { host }).dial(to.addresses[0]!))
  onTestFinished(() => conn.abort())
  return conn
}

describe('slow-loris', () => {
  it('a dialer trickling its secure handshake one byte at a time is dropped at the handshake timeout', async () => {
    const { net, victim, honest } = await victimNetwork()
    const loris = await rawDial(net, 'loris', victim)
    let closed = false
    loris.once('close', () => {
      closed = true
    })
    const timedOut = waitFor(victim, 'error', (e) => e.code === 'HANDSHAKE_TIMEOUT')
    let sent = 0
    for (let t = 0; !closed && t < 2 * HANDSHAKE_TIMEOUT; t += BYTE_EVERY) {
      loris.send(noiseFirstMessage.subarray(sent, sent + 1))
      sent++
      // The honest peer is served at every step of the attack.
      if (t % 500 === 0) await expect(until(honest.send(victim.id, `t=${t}`))).resolves.toBeDefined()
      await advance(BYTE_EVERY)
    }
    await until(timedOut)
    expect(closed).toBe(true)
    // Dropped once the timeout passed, having trickled about timeout / interval bytes.
    expect(sent).toBeGreaterThanOrEqual(HANDSHAKE_TIMEOUT / BYTE_EVERY - 1)
    expect(sent).toBeLessThanOrEqual(HANDSHAKE_TIMEOUT / BYTE_EVERY + 2)
    await expect(until(honest.send(victim.id, 'after'))).resolves.toMatchObject({ peerId: victim.id })
  })

  it('a client trickling its HELLO inside the secure channel is dropped by the same deadline', async () => {
    const { net, victim, honest } = await victimNetwork()
    const client = await until(
      secureClient(memoryTransport(net.network, { host: 'loris' }), victim.addresses[0]!),
    )
    onTestFinished(() => client.conn.abort())
    const hello = frameMessage(client.hello())
    const timedOut = waitFor(victim, 'error', (e) => e.code === 'HANDSHAKE_TIMEOUT')
    for (let i = 0; i < hello.length && !client.isClosed(); i++) {
      client.sendRaw(hello.subarray(i, i + 1))
      await advance(BYTE_EVERY)
    }
    await until(timedOut)
    await until(client.closed)
    expect(client.counts.get('WELCOME')).toBeUndefined()
    expect(victim.peers().connected.map((p) => p.id)).toEqual([honest.id])
    await expect(until(honest.send(victim.id, 'unaffected'))).resolves.toMatchObject({ peerId: victim.id })
  })

  it('a flood of stalled handshakes: the connected peer is served and a newcomer gets in at once, pushing out the oldest stall', async () => {
    const { net, victim, honest } = await victimNetwork({ maxHandshakes: { inbound: 8 } })
    const conns: Connection[] = []
    for (let i = 0; i < 30; i++) conns.push(await rawDial(net, `loris-${i}`, victim))
    for (const c of conns) if (c.status === 'open') c.send(noiseFirstMessage.subarray(0, 1))
    await advance(50)
    // Only 8 handshakes run at once: each newer stall pushed out the oldest, so the last 8 remain.
    expect(conns.slice(0, 22).every((c) => c.status === 'closed')).toBe(true)
    expect(conns.slice(22).every((c) => c.status === 'open')).toBe(true)
    expect(victim.resources().handshakes).toBe(8)
    await expect(until(honest.send(victim.id, 'served'))).resolves.toMatchObject({ peerId: victim.id })
    await expect(until(victim.send(honest.id, 'and serving'))).resolves.toMatchObject({ peerId: honest.id })
    // A newcomer does not wait for the stalls to time out: its handshake pushes out the oldest one.
    const late = createPeer({
      name: 'late',
      transport: memoryTransport(net.network, { host: 'late' }),
      listen: false,
    })
    onTestFinished(() => until(late.stop()))
    await until(late.start())
    await expect(until(late.connect(victim.addresses[0]!))).resolves.toMatchObject({ id: victim.id })
    await expect(until(late.send(victim.id, 'at once'))).resolves.toMatchObject({ peerId: victim.id })
    expect(conns[22]!.status).toBe('closed')
    // The rest are dropped by the handshake timeout.
    await advance(HANDSHAKE_TIMEOUT)
    expect(conns.every((c) => c.status === 'closed')).toBe(true)
  })
})
