import { describe, expect, it, onTestFinished, vi } from 'vitest'
import {
  createHandshakeGate,
  Discouragement,
  type EvictionCandidate,
  HandshakeSlots,
  InboundEviction,
  STALLED_HANDSHAKE_MS,
} from '../src/admission.js'
import { createPeer } from '../src/peer.js'
import { PeerError } from '../src/peer-errors.js'
import type { PeerInit } from '../src/peer-types.js'
import { plaintextUpgrader } from '../src/secure/plaintext.js'
import { memoryNetwork, memoryTransport } from '../src/transports/memory.js'

describe('handshake slots', () => {
  it('past the inbound bound, the oldest handshake in progress is aborted to make room', () => {
    const slots = new HandshakeSlots(2, 1)
    const aborted: string[] = []
    const releaseA = slots.admitInbound(() => aborted.push('a'))
    slots.admitInbound(() => aborted.push('b'))
    slots.admitInbound(() => aborted.push('c'))
    expect(aborted).toEqual(['a'])
    expect(slots.inProgress).toBe(2)
    // Releasing a slot that was already taken back changes nothing.
    releaseA.release()
    expect(slots.inProgress).toBe(2)
  })

  it('a finished handshake frees its slot, so nothing is aborted', () => {
    const slots = new HandshakeSlots(1, 1)
    const aborted: string[] = []
    const a = slots.admitInbound(() => aborted.push('a'))
    a.release()
    slots.admitInbound(() => aborted.push('b'))
    expect(aborted).toEqual([])
  })

  it("a flood from one network group pushes out its own handshakes, least progressed and oldest first, never another group's", () => {
    const slots = new HandshakeSlots(3, 1)
    const aborted: string[] = []
    const slot = (name: string, group: string) => slots.admitInbound(() => aborted.push(name), group)
    slot('slow-honest', '10.1')
    slot('flood-1', '10.9').advance()
    slot('flood-2', '10.9')
    // Full: the flood's group holds the most; of its two, flood-2 got least far though flood-1 is older.
    slot('flood-3', '10.9')
    slot('flood-4', '10.9')
    slot('flood-5', '10.9')
    expect(aborted).toEqual(['flood-2', 'flood-3', 'flood-4'])
    // A newcomer from a group of its own pushes out the flood's, still never the slow honest handshake.
    slot('other', '10.2')
    expect(aborted.at(-1)).toBe('flood-5')
    expect(aborted).not.toContain('slow-honest')
  })

  it('handshakes that finished the key exchange and then stand still lose their rank: an honest newcomer of their group is not the one pushed out', () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    onTestFinished(() => {
      vi.useRealTimers()
    })
    const slots = new HandshakeSlots(3, 1)
    const aborted: string[] = []
    const slot = (name: string, group: string) => slots.admitInbound(() => aborted.push(name), group)
    for (const name of ['stalled-1', 'stalled-2', 'stalled-3']) slot(name, '127.0').advance()
    vi.advanceTimersByTime(STALLED_HANDSHAKE_MS + 1)
    slot('honest', '127.0')
    slot('next', '127.0')
    // The stalled ones went, oldest first; the honest newcomer, still in its key exchange, stays.
    expect(aborted).toEqual(['stalled-1', 'stalled-2'])
    // Within the second, a handshake that got further still outranks one that did not.
    slot('fresh', '127.0').advance()
    slot('newest', '127.0')
    expect(aborted.slice(2)).toEqual(['stalled-3', 'honest'])
  })

  it('outbound dials past the bound wait their turn, in order, and an aborted wait leaves the queue', async () => {
    const slots = new HandshakeSlots(1, 1)
    const first = await slots.acquireOutbound(new AbortController().signal)
    const order: string[] = []
    const cancelled = new AbortController()
    const second = slots.acquireOutbound(new AbortController().signal).then((r) => {
      order.push('second')
      return r
    })
    const gone = slots.acquireOutbound(cancelled.signal).catch(() => order.push('gone'))
    const third = slots.acquireOutbound(new AbortController().signal).then((r) => {
      order.push('third')
      return r
    })
    cancelled.abort(new Error('no longer wanted'))
    await gone
    expect(slots.inProgress).toBe(1)
    first()
    ;(await second)()
    ;(await third)()
    expect(order).toEqual(['gone', 'second', 'third'])
    expect(slots.inProgress).toBe(0)
  })
})

describe('a handshake gate shared by peers', () => {
  it('holds at most its size, passes a slot to the next waiter that has not given up, and counts waiters', async () => {
    const gate = createHandshakeGate(2)
    const a = await gate.acquire(new AbortController().signal)
    await gate.acquire(new AbortController().signal)
    const cancelled = new AbortController()
    const gone = gate.acquire(cancelled.signal).then(
      () => 'acquired',
      () => 'gone',
    )
    const next = gate.acquire(new AbortController().signal)
    expect(gate.waiting).toBe(2)
    cancelled.abort(new Error('no longer wanted'))
    expect(await gone).toBe('gone')
    a()
    a() // a second release changes nothing
    const release = await next
    expect(gate.inUse).toBe(2)
    expect(gate.waiting).toBe(0)
    release()
    expect(gate.inUse).toBe(1)
  })

  it('a slow peer completes its handshake while half-open connections from another network group keep coming', async () => {
    // The slots alone: the flood's rate is what the next test limits.
    const { outcome } = await connectDuringFlood(
      { victim: 'victim', honest: 'honest', flood: 'flood' },
      {
        connectRate: false,
      },
    )
    expect(outcome).toBe('connected')
  })

  it('a host opening connections faster than connectRate is refused before any handshake, so a peer next to it still gets in', async () => {
    // The honest peer is in the flood's network group: eviction by group cannot tell them apart, only the
    // flood's rate can.
    const { outcome, refused } = await connectDuringFlood(
      { victim: '192.0.2.1', honest: '198.51.100.8', flood: '198.51.100.7' },
      {},
      30,
    )
    expect(outcome).toBe('connected')
    expect(
      refused.filter((m) => m.includes('198.51.100.7 opens connections faster than 10/s')).length,
    ).toBeGreaterThan(10)
  })

  it('rejects a size below one', () => {
    expect(() => createHandshakeGate(0)).toThrow(RangeError)
  })

  it('a dial waiting for its turn does not spend its handshake timeout there, and one that waits too long fails with HANDSHAKE_TIMEOUT', async () => {
    const network = memoryNetwork()
    const gate = createHandshakeGate(1)
    // A listener that accepts and never answers: the dial to it holds the only slot until its timeout.
    const silent = await memoryTransport(network, { host: 'silent' }).listen('silent:0', () => {})
    onTestFinished(() => silent.close())
    const common = { upgrader: plaintextUpgrader(), handshakeGate: gate }
    const honest = createPeer({
      transport: memoryTransport(network, { host: 'h' }),
      listen: 'h:0',
      ...common,
    })
    const stuck = createPeer({
      transport: memoryTransport(network, { host: 's' }),
      handshakeTimeout: 400,
      ...common,
    })
    const patient = createPeer({
      transport: memoryTransport(network, { host: 'p' }),
      handshakeTimeout: 150,
      ...common,
    })
    const hasty = createPeer({
      transport: memoryTransport(network, { host: 'q' }),
      handshakeTimeout: 30,
      ...common,
    })
    for (const p of [honest, stuck, patient, hasty]) {
      await p.start()
      onTestFinished(() => p.stop())
    }
    const blocked = stuck.connect(silent.address).catch((err: unknown) => err)
    // Waits about 400 ms for the slot, longer than its own 150 ms timeout, then connects.
    const waited = patient.connect(honest.addresses[0]!)
    // Waits at most 6 × 30 ms for the slot: gives up while the stuck dial holds it.
    const gaveUp = hasty.connect(honest.addresses[0]!).catch((err: unknown) => err)
    expect(await gaveUp).toMatchObject({ code: 'HANDSHAKE_TIMEOUT' })
    expect(((await gaveUp) as PeerError).message).toMatch(/waiting their turn/)
    expect(await blocked).toBeInstanceOf(PeerError)
    expect((await waited).id).toBe(honest.id)
    expect(gate.inUse).toBe(0)
  })
})

function candidate(value: string, over: Partial<EvictionCandidate<string>> = {}): EvictionCandidate<string> {
  return {
    value,
    netgroup: value,
    connectedAt: 0,
    rtt: Number.POSITIVE_INFINITY,
    lastUseful: 0,
    discouraged: false,
    ...over,
  }
}

describe('inbound eviction', () => {
  it('evicts from the network group holding the most slots, its youngest peer', () => {
    const honest = Array.from({ length: 6 }, (_, i) => candidate(`honest-${i}`, { connectedAt: i }))
    // An attacker with many connections from one group, opened after the honest peers.
    const attacker = Array.from({ length: 40 }, (_, i) =>
      candidate(`attacker-${i}`, { netgroup: '10.1', connectedAt: 100 + i }),
    )
    const victim = new InboundEviction().select([...honest, ...attacker], 46)
    expect(victim).toBe('attacker-39')
  })

  it('protects peers that recently delivered something useful and the fastest ones', () => {
    const list = Array.from({ length: 32 }, (_, i) =>
      candidate(`idle-${i}`, { netgroup: 'same', connectedAt: i }),
    )
    list.push(candidate('useful', { netgroup: 'same', connectedAt: 1_000, lastUseful: 5 }))
    list.push(candidate('fast', { netgroup: 'same', connectedAt: 1_001, rtt: 1 }))
    const victim = new InboundEviction().select(list, list.length)
    expect(victim).not.toBe('useful')
    expect(victim).not.toBe('fast')
    expect(victim).toMatch(/^idle-/)
  })

  it('evicts a discouraged peer first, and none of the protections cover it', () => {
    const list = Array.from({ length: 8 }, (_, i) => candidate(`p-${i}`, { connectedAt: i, lastUseful: 1 }))
    list.push(candidate('bad', { connectedAt: 0, lastUseful: 99, rtt: 0, discouraged: true }))
    expect(new InboundEviction().select(list, list.length)).toBe('bad')
  })

  it('returns nothing when every candidate is protected', () => {
    expect(new InboundEviction().select([candidate('only', { lastUseful: 1 })], 1)).toBeUndefined()
    expect(new InboundEviction().select([], 1)).toBeUndefined()
  })
})

describe('discouragement', () => {
  it('lasts its duration and is bounded in entries', () => {
    const d = new Discouragement(60_000, 2)
    d.add('10.1')
    d.add('10.2')
    d.add('10.3')
    expect(d.has('10.1')).toBe(false)
    expect(d.has('10.2')).toBe(true)
    expect(d.has('10.3')).toBe(true)
    expect(new Discouragement(-1).has('x')).toBe(false)
  })
})

/**
 * An honest peer connects to a victim with two inbound handshake slots while a flood host opens a
 * half-open connection (never a byte: each holds a slot until pushed out) every 5 ms, for at most 2 s,
 * after `burst` at once. Every byte takes 10 ms each way, so the honest handshake needs several round
 * trips. Returns how the honest dial ended and what the victim reported.
 */
async function connectDuringFlood(
  hosts: { victim: string; honest: string; flood: string },
  victimInit: Partial<PeerInit>,
  burst = 2,
): Promise<{ outcome: string | undefined; refused: string[] }> {
  vi.useFakeTimers()
  const network = memoryNetwork({ delay: 10 })
  const victim = createPeer({
    transport: memoryTransport(network, { host: hosts.victim }),
    listen: `${hosts.victim}:0`,
    maxHandshakes: { inbound: 2 },
    ...victimInit,
  })
  const honest = createPeer({ transport: memoryTransport(network, { host: hosts.honest }), listen: false })
  const refused: string[] = []
  victim.on('error', (err) => refused.push(err.message))
  for (const p of [victim, honest]) {
    await p.start()
    onTestFinished(() => p.stop())
  }
  // Registered last, so it runs first: the peers stop on real timers.
  onTestFinished(() => void vi.useRealTimers())
  const flood = memoryTransport(network, { host: hosts.flood })
  const halfOpen = () => void flood.dial(victim.addresses[0]!).catch(() => {})
  for (let i = 0; i < burst; i++) halfOpen()
  await vi.advanceTimersByTimeAsync(20)
  let outcome: string | undefined
  honest.connect(victim.addresses[0]!).then(
    () => (outcome = 'connected'),
    (err: PeerError) => (outcome = err.code),
  )
  for (let i = 0; i < 400 && outcome === undefined; i++) {
    halfOpen()
    await vi.advanceTimersByTimeAsync(5)
  }
  return { outcome, refused }
}
