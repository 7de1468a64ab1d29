import { once } from 'node:events'
import {
  AckStatus,
  FrameDecoder,
  type Message,
  messageId,
  PROTOCOL_VERSION,
  type TextMessage,
} from '@parley/protocol'
import { describe, expect, it, onTestFinished } from 'vitest'
import { generateIdentity } from '../src/identity.js'
import { createPeer, type Peer } from '../src/peer.js'
import type { PeerError } from '../src/peer-errors.js'
import type { PeerInit } from '../src/peer-types.js'
import { plaintextUpgrader } from '../src/secure/plaintext.js'
import type { Connection, Transport } from '../src/transport.js'
import { memoryNetwork, memoryTransport } from '../src/transports/memory.js'
import { mapAccepted, memoryPeer } from './fixtures/memory-peer.js'
import { decodeBody, frameFor, SERVICES } from './fixtures/wire.js'

// The peer's reliability mechanisms at the frame level: the in-flight budget, aborts while waiting,
// what a peer cut off for a violation is told. Plaintext on purpose: these tests read and write the
// peer protocol byte for byte (the encrypted path is exercised end to end in packages/testing).

async function setup(init: Partial<PeerInit> = {}, wrap: (t: Transport) => Transport = (t) => t) {
  const network = memoryNetwork()
  const peer = memoryPeer(network, 'peer', { upgrader: plaintextUpgrader(), ...init }, wrap)
  await peer.start()
  const client = async () => {
    const conn = await memoryTransport(network, { host: `client` }).dial(peer.addresses[0]!)
    onTestFinished(() => conn.abort())
    const c = reader(conn)
    const id = generateIdentity().peerId
    c.send({
      type: 'HELLO',
      version: PROTOCOL_VERSION,
      peerId: id,
      name: 'client',
      listenAddrs: [],
      capabilities: [...SERVICES],
    })
    expect((await c.next()).type).toBe('WELCOME')
    return { ...c, id }
  }
  return { peer, client }
}

function reader(conn: Connection) {
  const decoder = new FrameDecoder()
  const messages: Message[] = []
  const waiters = new Set<() => void>()
  conn.on('data', (chunk) => {
    for (const body of decoder.push(chunk)) messages.push(decodeBody(body))
    for (const w of waiters) w()
  })
  conn.on('end', () => void conn.close().catch(() => {}))
  const closed = once(conn, 'close')
  return {
    conn,
    closed,
    messages,
    send: (m: Message) => conn.send(frameFor(m)),
    async next(type?: Message['type']): Promise<Message> {
      const deadline = AbortSignal.timeout(2_000)
      for (;;) {
        const i = messages.findIndex((m) => type === undefined || m.type === type)
        if (i >= 0) return messages.splice(i, 1)[0]!
        if (deadline.aborted) throw new Error(`no ${type ?? 'message'} arrived`)
        await new Promise<void>((resolve) => {
          const wake = () => {
            waiters.delete(wake)
            resolve()
          }
          waiters.add(wake)
          deadline.addEventListener('abort', wake, { once: true })
        })
      }
    },
  }
}

/** `inner`, with `tap` applied to each connection it accepts before the peer sees it. */
function tapAccepted(inner: Transport, tap: (conn: Connection) => void): Transport {
  return mapAccepted(inner, (conn) => {
    tap(conn)
    return conn
  })
}

/** Records what the peer writes on each accepted connection, one entry per write, as it writes it. */
function recordWrites(inner: Transport, writes: Message[][], sizes: number[] = []): Transport {
  return tapAccepted(inner, (conn) => {
    const decoder = new FrameDecoder()
    const send = conn.send.bind(conn)
    conn.send = (bytes) => {
      writes.push(decoder.push(bytes).map((body) => decodeBody(body)))
      sizes.push(bytes.byteLength)
      return send(bytes)
    }
  })
}

/** Counts `close()` calls on the connections `inner` accepts. */
function countCloses(inner: Transport, closed: () => void): Transport {
  return tapAccepted(inner, (conn) => {
    const close = conn.close.bind(conn)
    conn.close = (opts) => {
      closed()
      return close(opts)
    }
  })
}

/** A PING/PONG round trip: whatever the peer wrote before answering has arrived by then. */
async function sync(c: Awaited<ReturnType<Awaited<ReturnType<typeof setup>>['client']>>, nonce: number) {
  c.send({ type: 'PING', nonce })
  await c.next('PONG')
}

describe('in-flight budget', () => {
  it('one ACK admits one waiting sender, not the whole queue', async () => {
    const { peer, client } = await setup({ inFlight: { messages: 2 } })
    const c = await client()
    const sends = Array.from({ length: 6 }, (_, i) => peer.send(c.id, `m${i}`))
    await sync(c, 1)
    const texts = () => c.messages.filter((m) => m.type === 'TEXT') as TextMessage[]
    const ack = (t: TextMessage) =>
      c.send({ type: 'ACK', stream: t.stream, seq: t.seq, status: AckStatus.DELIVERED })
    expect(texts()).toHaveLength(2)
    ack(texts()[0]!)
    await sync(c, 2)
    expect(texts()).toHaveLength(3)
    for (const t of texts()) ack(t)
    await sync(c, 3)
    expect(texts()).toHaveLength(5)
    for (const t of texts().slice(3)) ack(t)
    await sync(c, 4)
    ack(texts()[5]!)
    await expect(Promise.all(sends)).resolves.toHaveLength(6)
  })

  it('a send aborted while it waits for room fails at once and gives its turn to the next', async () => {
    const { peer, client } = await setup({ inFlight: { messages: 1 } })
    const c = await client()
    const first = peer.send(c.id, 'first')
    const controller = new AbortController()
    const aborted = peer.send(c.id, 'aborted', { signal: controller.signal })
    const third = peer.send(c.id, 'third')
    controller.abort()
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' })
    const t1 = (await c.next('TEXT')) as TextMessage
    c.send({ type: 'ACK_UPTO', stream: t1.stream, seq: t1.seq })
    await first
    const t3 = (await c.next('TEXT')) as TextMessage
    expect(t3.text).toBe('third')
    c.send({ type: 'ACK_UPTO', stream: t3.stream, seq: t3.seq })
    await expect(third).resolves.toMatchObject({ id: messageId(t3.stream, t3.seq) })
  })
})

describe('sends waiting for room', () => {
  it('count their bytes against the budget when their turn comes', async () => {
    const { peer, client } = await setup({ inFlight: { bytes: 10 } })
    const c = await client()
    const sends = ['aaaaaaaa', 'bbbbbbbb', 'cccccccc', 'dddddddd'].map((t) => peer.send(c.id, t))
    await sync(c, 1)
    const texts = () => (c.messages.filter((m) => m.type === 'TEXT') as TextMessage[]).map((t) => t.text)
    // 16 bytes in flight once b is written: c and d wait.
    expect(texts()).toEqual(['aaaaaaaa', 'bbbbbbbb'])
    const first = c.messages.find((m) => m.type === 'TEXT') as TextMessage
    c.send({ type: 'ACK_UPTO', stream: first.stream, seq: first.seq })
    await sync(c, 2)
    // a's 8 bytes freed room for c, whose own 8 fill it again: d still waits.
    expect(texts()).toEqual(['aaaaaaaa', 'bbbbbbbb', 'cccccccc'])
    c.send({ type: 'ACK_UPTO', stream: first.stream, seq: first.seq + 2 })
    await sync(c, 3)
    expect(texts()).toEqual(['aaaaaaaa', 'bbbbbbbb', 'cccccccc', 'dddddddd'])
    c.send({ type: 'ACK_UPTO', stream: first.stream, seq: first.seq + 3 })
    await expect(Promise.all(sends)).resolves.toHaveLength(4)
  })

  it('fail with the reason when the connection ends, with or without an abort signal', async () => {
    const { peer, client } = await setup({ inFlight: { messages: 1 }, reconnect: false })
    const c = await client()
    const written = peer.send(c.id, 'written')
    const waiting = [
      peer.send(c.id, 'plain'),
      peer.send(c.id, 'with a signal', { signal: new AbortController().signal }),
      peer.send(c.id, 'with a timeout', { timeout: 60_000 }),
    ]
    await sync(c, 1)
    c.conn.abort()
    for (const send of [written, ...waiting]) await expect(send).rejects.toMatchObject({ code: 'PEER_GONE' })
  })
})

describe('sendMany under the in-flight budget', () => {
  it('an aborted batch drops its unwritten texts and gives back the room its written ones held', async () => {
    const { peer, client } = await setup({ inFlight: { messages: 3 } })
    const c = await client()
    const controller = new AbortController()
    const batch = peer.sendMany(
      c.id,
      Array.from({ length: 50 }, (_, i) => `m${i}`),
      { signal: controller.signal },
    )
    await sync(c, 1)
    const texts = () => c.messages.filter((m) => m.type === 'TEXT') as TextMessage[]
    // The window's worth was written and is never acknowledged by this client.
    expect(texts().map((t) => t.text)).toEqual(['m0', 'm1', 'm2'])
    controller.abort()
    await expect(batch).rejects.toMatchObject({ code: 'ABORTED' })
    // Only the room the abort gave back lets this one out.
    void peer.send(c.id, 'after').catch(() => {})
    await sync(c, 2)
    expect(texts().map((t) => t.text)).toEqual(['m0', 'm1', 'm2', 'after'])
  })
  it('a refused text fails the batch, and no text of it is written after the refusal', async () => {
    const { peer, client } = await setup({ inFlight: { messages: 3 } })
    const c = await client()
    const batch = peer.sendMany(
      c.id,
      Array.from({ length: 50 }, (_, i) => `m${i}`),
    )
    await sync(c, 1)
    const texts = () => c.messages.filter((m) => m.type === 'TEXT') as TextMessage[]
    const first = texts()[0]!
    c.send({ type: 'ACK', stream: first.stream, seq: first.seq, status: AckStatus.REFUSED })
    await expect(batch).rejects.toMatchObject({ code: 'REFUSED' })
    await sync(c, 2)
    expect(texts().map((t) => t.text)).toEqual(['m0', 'm1', 'm2'])
  })
})

describe('cut off for a violation', () => {
  it('gets the ACKs of what was accepted and a GOODBYE with the reason before the close', async () => {
    const { peer, client } = await setup({ rateLimit: { perSecond: 1, burst: 3 } })
    const got: string[] = []
    peer.on('message', (m) => got.push(m.text))
    const c = await client()
    const stream = 'ab'.repeat(8)
    c.conn.send(
      Buffer.concat(
        [1, 2, 3, 4, 5].map((seq) => frameFor({ type: 'TEXT', stream, seq, sentAt: seq, text: `t${seq}` })),
      ),
    )
    await c.closed
    expect(got).toEqual(['t1', 't2', 't3'])
    expect(c.messages).toEqual([
      { type: 'ACK_UPTO', stream, seq: 3 },
      { type: 'ACK', stream, seq: 4, status: AckStatus.REFUSED },
      { type: 'GOODBYE', reason: expect.stringMatching(/more than 1 messages\/s/) },
    ])
  })

  // Frames that settle nothing cost the peer's rate budget like messages, or a peer could keep this one
  // decoding them for free.
  it.each<[string, Message]>([
    ['ACK_UPTO of a stream it never got', { type: 'ACK_UPTO', stream: 'cd'.repeat(8), seq: 1 }],
    [
      'ACK of a send that is not pending',
      { type: 'ACK', stream: 'cd'.repeat(8), seq: 1, status: AckStatus.DELIVERED },
    ],
    ['PONG to no ping', { type: 'PONG', nonce: 7 }],
    ['PEERS nobody asked for', { type: 'PEERS', peers: [] }],
  ])('a flood of %s is cut off with a GOODBYE', async (_name, frame) => {
    const { peer, client } = await setup({ rateLimit: { perSecond: 1, burst: 3 } })
    const c = await client()
    c.conn.send(Buffer.concat(Array.from({ length: 5 }, () => frameFor(frame))))
    await c.closed
    expect(c.messages).toEqual([
      { type: 'GOODBYE', reason: expect.stringMatching(/more than 1 messages\/s/) },
    ])
    expect(peer.peers().connected).toEqual([])
  })

  it('a repeated ACK_UPTO costs the budget: a flood of repeats is cut off', async () => {
    const { peer, client } = await setup({ rateLimit: { perSecond: 1, burst: 3 } })
    const c = await client()
    const sent = peer.send(c.id, 'once')
    const t = (await c.next('TEXT')) as TextMessage
    c.send({ type: 'ACK_UPTO', stream: t.stream, seq: t.seq })
    await sent
    const repeat = frameFor({ type: 'ACK_UPTO', stream: t.stream, seq: t.seq })
    c.conn.send(Buffer.concat(Array.from({ length: 5 }, () => repeat)))
    await c.closed
    expect(c.messages.at(-1)).toEqual({
      type: 'GOODBYE',
      reason: expect.stringMatching(/more than 1 messages\/s/),
    })
  })

  it('ACK_UPTOs for sends that already gave up are free: a slow honest receiver is not cut off', async () => {
    // The tiny budget is the client's with us; our sends to it are not paced to it.
    const { peer, client } = await setup({ rateLimit: { perSecond: 1, burst: 3 }, sendPace: false })
    const c = await client()
    const ac = new AbortController()
    const sends = Array.from({ length: 5 }, (_, i) => peer.send(c.id, `m${i}`, { signal: ac.signal }))
    const texts: TextMessage[] = []
    for (let i = 0; i < 5; i++) texts.push((await c.next('TEXT')) as TextMessage)
    ac.abort()
    await Promise.allSettled(sends)
    // Each acknowledges one more, after its send was given up: nothing is left to settle.
    c.conn.send(Buffer.concat(texts.map((t) => frameFor({ type: 'ACK_UPTO', stream: t.stream, seq: t.seq }))))
    const after = peer.send(c.id, 'still here')
    expect(((await c.next('TEXT')) as TextMessage).text).toBe('still here')
    const last = texts.at(-1)!
    c.send({ type: 'ACK_UPTO', stream: last.stream, seq: last.seq + 1 })
    await expect(after).resolves.toMatchObject({ peerId: c.id })
  })

  it('duplicates alternating between two streams are cut off, not answered for free', async () => {
    const { client } = await setup({ rateLimit: { perSecond: 1, burst: 3 } })
    const c = await client()
    const [a, b] = ['ab'.repeat(8), 'cd'.repeat(8)]
    const frames = Array.from({ length: 20 }, (_, i) =>
      frameFor({ type: 'TEXT', stream: i % 2 === 0 ? a : b, seq: 1, sentAt: 1, text: 'dup' }),
    )
    c.conn.send(Buffer.concat(frames))
    await c.closed
    expect(c.messages.at(-1)).toEqual({
      type: 'GOODBYE',
      reason: expect.stringMatching(/more than 1 messages\/s/),
    })
    expect(c.messages.filter((m) => m.type === 'ACK_UPTO').length).toBeLessThanOrEqual(3)
  })

  it('a GOODBYE repeated while the link closes does not start a close each', async () => {
    let closes = 0
    const { client } = await setup({}, (t) => countCloses(t, () => closes++))
    const c = await client()
    c.conn.send(
      Buffer.concat(Array.from({ length: 200 }, () => frameFor({ type: 'GOODBYE', reason: 'bye' }))),
    )
    await c.closed
    // The GOODBYE's close and at most one more as the session ends; before, one per GOODBYE (201).
    expect(closes).toBeLessThanOrEqual(2)
  })

  it('frames after a refused HELLO are ignored, not an internal error', async () => {
    const network = memoryNetwork()
    const peer: Peer = createPeer({
      transport: memoryTransport(network, { host: 'peer' }),
      listen: 'peer:0',
      upgrader: plaintextUpgrader(),
    })
    await peer.start()
    onTestFinished(() => peer.stop())
    const errors: unknown[] = []
    peer.on('error', (e) => errors.push(e.cause))
    const conn = await memoryTransport(network, { host: 'c' }).dial(peer.addresses[0]!)
    onTestFinished(() => conn.abort())
    const c = reader(conn)
    // A HELLO of a future version is refused; the HELLO after it arrives while the link is closing.
    const hello = {
      type: 'HELLO' as const,
      peerId: generateIdentity().peerId,
      name: 'x',
      listenAddrs: [] as string[],
      capabilities: [...SERVICES],
    }
    conn.send(
      Buffer.concat([
        frameFor({ ...hello, version: PROTOCOL_VERSION + 1 }),
        frameFor({ ...hello, version: PROTOCOL_VERSION }),
      ]),
    )
    expect(await c.next()).toMatchObject({ type: 'REJECT' })
    await c.closed
    expect(errors.filter((e) => e instanceof TypeError)).toEqual([])
  })
})

describe('acknowledgements (PROTOCOL.md, "Acknowledgements")', () => {
  const text = (stream: string, seq: number) =>
    frameFor({ type: 'TEXT', stream, seq, sentAt: seq, text: `${stream.slice(0, 2)}${seq}` })

  /** A peer that records the texts it delivers, and a client connected to it. */
  async function delivering() {
    const { peer, client } = await setup()
    const got: string[] = []
    peer.on('message', (m) => got.push(m.text))
    return { got, c: await client() }
  }

  it('answers the TEXTs of one read with one ACK_UPTO', async () => {
    const { got, c } = await delivering()
    const stream = 'ab'.repeat(8)
    c.conn.send(Buffer.concat([text(stream, 1), text(stream, 2), text(stream, 3)]))
    await sync(c, 1)
    expect(got).toEqual(['ab1', 'ab2', 'ab3'])
    expect(c.messages).toEqual([{ type: 'ACK_UPTO', stream, seq: 3 }])
  })

  it('acknowledges a read of many TEXTs before it handles the next read, so the sender can go on', async () => {
    const writes: Message[][] = []
    const { peer, client } = await setup({}, (t) => recordWrites(t, writes))
    const c = await client()
    const stream = 'ab'.repeat(8)
    // For each delivered message: the highest seq the peer had acknowledged by then.
    const ackedBefore: number[] = []
    peer.on('message', () => {
      const acks = writes.flat().filter((m) => m.type === 'ACK_UPTO')
      ackedBefore.push(acks.at(-1)?.seq ?? 0)
    })
    const read = (from: number) => Buffer.concat(Array.from({ length: 20 }, (_, i) => text(stream, from + i)))
    c.conn.send(read(1))
    c.conn.send(read(21)) // arrives in the same turn of the event loop, as a second read
    await sync(c, 1)
    expect(ackedBefore).toHaveLength(40)
    expect(ackedBefore[20]).toBe(20)
    expect(c.messages).toEqual([
      { type: 'ACK_UPTO', stream, seq: 20 },
      { type: 'ACK_UPTO', stream, seq: 40 },
    ])
  })

  it('writes a burst of small sends in pieces of one record as it goes, not all at the end', async () => {
    const writes: Message[][] = []
    const sizes: number[] = []
    // Unpaced: a burst past the pace would leave in the pace's pieces, not the writer's.
    const { peer, client } = await setup({ sendPace: false }, (t) => recordWrites(t, writes, sizes))
    const c = await client()
    writes.length = 0
    sizes.length = 0
    const sends = Array.from({ length: 1_500 }, (_, i) => peer.send(c.id, `${i}`.padEnd(64, '.')))
    // Before the burst's deferred flush: the first full pieces are already on their way.
    expect(writes.length).toBeGreaterThan(0)
    await sync(c, 1)
    expect(Math.max(...sizes)).toBeLessThanOrEqual(65_519)
    const texts = writes.flat().filter((m) => m.type === 'TEXT') as TextMessage[]
    expect(texts.map((t) => t.seq)).toEqual(Array.from({ length: 1_500 }, (_, i) => i + 1))
    c.send({ type: 'ACK_UPTO', stream: texts[0]!.stream, seq: 1_500 })
    await Promise.all(sends)
  })

  it('sends the acknowledgement of a small read with the reply made for it, in one write', async () => {
    const writes: Message[][] = []
    const { peer, client } = await setup({}, (t) => recordWrites(t, writes))
    const c = await client()
    // The reply comes a moment after the message (an application that awaits something first).
    peer.on('message', (m) => queueMicrotask(() => void peer.send(c.id, `re: ${m.text}`).catch(() => {})))
    const stream = 'ab'.repeat(8)
    writes.length = 0
    c.conn.send(text(stream, 1))
    const reply = (await c.next('TEXT')) as TextMessage
    expect(reply.text).toBe('re: ab1')
    expect(writes[0]?.map((m) => m.type).sort()).toEqual(['ACK_UPTO', 'TEXT'])
  })

  it('delivers a TEXT once per stream and seq; a new stream starts over', async () => {
    const { got, c } = await delivering()
    const [a, b] = ['aa'.repeat(8), 'bb'.repeat(8)]
    // seq 2 after 3 is a re-send (a gap is a send the sender gave up on); b is a new session of the
    // sender, and a late re-send from a is still recognised after it.
    const frames = [
      text(a, 1),
      text(a, 3),
      text(a, 2),
      text(a, 3),
      text(b, 1),
      text(b, 1),
      text(a, 3),
      text(b, 2),
    ]
    for (const frame of frames) {
      c.conn.send(frame)
      await c.next('ACK_UPTO')
    }
    expect(got).toEqual(['aa1', 'aa3', 'bb1', 'bb2'])
  })

  it('keeps streams apart within one read', async () => {
    const { got, c } = await delivering()
    const [a, b] = ['aa'.repeat(8), 'bb'.repeat(8)]
    c.conn.send(Buffer.concat([text(a, 1), text(a, 2), text(b, 1), text(a, 2), text(b, 1), text(b, 2)]))
    await sync(c, 1)
    expect(got).toEqual(['aa1', 'aa2', 'bb1', 'bb2'])
  })

  it("gives each message its own stream's id when streams alternate", async () => {
    const { peer, client } = await setup()
    const ids: string[] = []
    peer.on('message', (m) => ids.push(m.id))
    const c = await client()
    const [a, b] = ['aa'.repeat(8), 'bb'.repeat(8)]
    c.conn.send(Buffer.concat([text(a, 1), text(b, 1), text(a, 2), text(b, 0x10)]))
    await sync(c, 1)
    expect(ids).toEqual([messageId(a, 1), messageId(b, 1), messageId(a, 2), messageId(b, 0x10)])
  })

  it('an ACK_UPTO settles the sends up to its seq, in order, and no further', async () => {
    const { peer, client } = await setup()
    const c = await client()
    const settled: string[] = []
    const sends = ['one', 'two', 'three'].map((t) =>
      peer.send(c.id, t).then((r) => {
        settled.push(t)
        return r
      }),
    )
    await sync(c, 1)
    const texts = c.messages.filter((m) => m.type === 'TEXT') as TextMessage[]
    expect(texts.map((t) => t.seq)).toEqual([1, 2, 3])
    c.send({ type: 'ACK_UPTO', stream: 'ff'.repeat(8), seq: 3 }) // not this peer's stream: ignored
    c.send({ type: 'ACK_UPTO', stream: texts[0]!.stream, seq: 2 })
    await sync(c, 2)
    expect(settled).toEqual(['one', 'two'])
    c.send({ type: 'ACK_UPTO', stream: texts[0]!.stream, seq: 3 })
    const results = await Promise.all(sends)
    expect(results.map((r) => r.id)).toEqual(texts.map((t) => messageId(t.stream, t.seq)))
  })
})

describe('acknowledgements that lie', () => {
  it('an ACK_UPTO for a seq never sent cuts the peer off and settles no waiting send', async () => {
    const { peer, client } = await setup({ inFlight: { messages: 2 } })
    const c = await client()
    const outcomes: string[] = []
    const sends = ['a', 'b', 'c', 'd'].map((t) =>
      peer.send(c.id, t).then(
        () => outcomes.push(`${t} delivered`),
        (err: PeerError) => outcomes.push(`${t} ${err.code}`),
      ),
    )
    await sync(c, 1)
    const [first] = c.messages.filter((m) => m.type === 'TEXT') as TextMessage[]
    c.send({ type: 'ACK_UPTO', stream: first!.stream, seq: 1_000 })
    expect(await c.next('GOODBYE')).toMatchObject({ type: 'GOODBYE' })
    await Promise.all(sends)
    expect(outcomes).not.toContain('c delivered')
    expect(outcomes).not.toContain('d delivered')
  })
})

describe('what send() refuses and what the rate limit counts', () => {
  it('refuses a text with a lone surrogate at once, and the next send still goes through', async () => {
    const { peer, client } = await setup({ ackTimeout: 200 })
    const c = await client()
    await expect(peer.send(c.id, 'broken \uD800 text')).rejects.toMatchObject({ code: 'INVALID_TEXT' })
    const next = peer.send(c.id, 'fine')
    const t = (await c.next('TEXT')) as TextMessage
    expect(t).toMatchObject({ text: 'fine', seq: 1 })
    c.send({ type: 'ACK_UPTO', stream: t.stream, seq: t.seq })
    await expect(next).resolves.toMatchObject({ id: messageId(t.stream, t.seq) })
  })

  it('a re-sent TEXT costs no rate token: it is acknowledged, not refused', async () => {
    const { peer, client } = await setup({ rateLimit: { perSecond: 1, burst: 3 } })
    const got: string[] = []
    peer.on('message', (m) => got.push(m.text))
    const c = await client()
    const stream = 'ab'.repeat(8)
    const once = frameFor({ type: 'TEXT', stream, seq: 1, sentAt: 1, text: 'once' })
    c.conn.send(Buffer.concat([once, once, once, once]))
    await sync(c, 1)
    expect(got).toEqual(['once'])
    expect(c.messages).toEqual([{ type: 'ACK_UPTO', stream, seq: 1 }])
  })
})
