import { memoryTransport, type Peer, PeerError, type SendResult } from '@parley/core'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { inbox, interceptTransport, waitFor } from '../src/index.js'
import { advance, fakeTimeNetwork, until } from './fixtures/fake-time.js'

// Graceful shutdown under load: stop() while messages are in flight delivers or fails each one
// explicitly, none vanishes, and nothing (timer, connection) outlives the peer.

const hostOf = (p: Peer) => p.addresses[0]!.split(':')[0]!

/** Tallies how sends settled; `pending` is what has not settled yet. */
function tally(sends: Array<Promise<SendResult>>) {
  const results: SendResult[] = []
  const errors: unknown[] = []
  for (const s of sends)
    s.then(
      (r) => results.push(r),
      (e) => errors.push(e),
    )
  return {
    results,
    errors,
    get pending() {
      return sends.length - results.length - errors.length
    },
    codes() {
      const out: Record<string, number> = {}
      for (const e of errors) {
        const code = e instanceof PeerError ? e.code : `not a PeerError: ${String(e)}`
        out[code] = (out[code] ?? 0) + 1
      }
      return out
    },
  }
}

describe('graceful shutdown under load', () => {
  it('stop() with hundreds of sends in flight, waiting, or queued for a reconnecting peer: each one settles', async () => {
    const net = await fakeTimeNetwork({
      size: 5,
      peer: { inFlight: { messages: 20 }, reconnect: { initialDelay: 5_000 }, stopTimeout: 2_000 },
    })
    const [hub, ...others] = net.peers as [Peer, ...Peer[]]
    for (const p of others) await until(net.connect(hub, p))
    const boxes = others.map((p) => inbox(p))
    // Every link is slow (200 ms); others[1] is cut off (its acks never come back), others[2] is lost and
    // being redialed (its messages wait in the outbox).
    const [, cut, lost] = others as [Peer, Peer, Peer, Peer]
    net.partition(hub, cut)
    const reconnecting = waitFor(hub, 'peer:reconnecting')
    net.network.dropConnections(hostOf(lost))
    await until(reconnecting)
    net.network.setDelay(200)
    const sends: Array<Promise<SendResult>> = []
    for (let i = 0; i < 400; i++) {
      const to = others[i % others.length]!
      sends.push(hub.send(to.id, `load ${i}`))
    }
    const t = tally(sends)
    await advance(100)
    await until(hub.stop())
    // stop() returned: every send has settled, each with a result or a PeerError.
    await advance(0)
    expect(t.pending).toBe(0)
    expect(t.results.length + t.errors.length).toBe(400)
    expect(Object.keys(t.codes()).every((c) => ['PEER_GONE', 'ACK_TIMEOUT'].includes(c))).toBe(true)
    // What was acknowledged was delivered, once.
    await advance(1_000)
    const delivered = boxes.flatMap((b) => b.messages.map((m) => m.id))
    expect(new Set(delivered).size).toBe(delivered.length)
    for (const r of t.results) expect(delivered).toContain(r.id)
    expect(t.results.length).toBeGreaterThan(0)
    expect(t.errors.length).toBeGreaterThan(0)
  })

  it('the receiver stops while messages to it are in flight: each send is acked or fails with PEER_GONE', async () => {
    const net = await fakeTimeNetwork({ size: 2 })
    const [a, b] = net.peers as [Peer, Peer]
    await until(net.connect(a, b))
    const box = inbox(b)
    net.network.setDelay(5)
    const sends = Array.from({ length: 300 }, (_, i) => a.send(b.id, `m${i}`))
    const t = tally(sends)
    await advance(7)
    await until(b.stop())
    await until(Promise.allSettled(sends))
    expect(t.results.length + t.errors.length).toBe(300)
    expect(Object.keys(t.codes())).toEqual(t.errors.length > 0 ? ['PEER_GONE'] : [])
    const delivered = new Set(box.messages.map((m) => m.id))
    expect(delivered.size).toBe(box.messages.length)
    for (const r of t.results) expect(delivered.has(r.id)).toBe(true)
  })

  it('destroy() under load settles every send at once', async () => {
    const net = await fakeTimeNetwork({ size: 3 })
    const [a, b, c] = net.peers as [Peer, Peer, Peer]
    await until(net.connect(a, b))
    await until(net.connect(a, c))
    net.network.setDelay(50)
    const sends = Array.from({ length: 200 }, (_, i) => a.send(i % 2 ? b.id : c.id, `m${i}`))
    const t = tally(sends)
    a.destroy()
    await Promise.allSettled(sends)
    expect(t.results).toEqual([])
    expect(t.codes()).toEqual({ PEER_GONE: 200 })
    await expect(a.send(b.id, 'after')).rejects.toMatchObject({ code: 'NOT_RUNNING' })
  })

  it('stop() in the middle of handshakes, both ways, leaves no timer and no connection behind', async () => {
    const net = await fakeTimeNetwork({ size: 2, peer: { handshakeTimeout: 10_000 } })
    const [a, b] = net.peers as [Peer, Peer]
    // A listener that never answers: a's outbound handshake hangs.
    const mute = interceptTransport(memoryTransport(net.network, { host: 'mute' }), () => null)
    const listener = await mute.listen('mute:0', () => {})
    onTestFinished(() => listener.close())
    const dialing = a.connect('mute:1').catch((e: unknown) => e)
    // A dialer that never speaks: a's inbound handshake hangs too.
    const silent = await until(memoryTransport(net.network, { host: 'silent' }).dial(a.addresses[0]!))
    onTestFinished(() => silent.abort())
    await advance(100)
    expect(net.network.connections).toBe(2)
    await until(a.stop())
    expect(await dialing).toBeInstanceOf(PeerError)
    await advance(10)
    expect(net.network.connections).toBe(0)
    await until(b.stop())
    expect(vi.getTimerCount()).toBe(0)
  })
})
