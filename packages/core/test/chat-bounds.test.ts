import type { Message } from '@parley/protocol'
import { describe, expect, it } from 'vitest'
import { rawClient } from './fixtures/raw-client.js'
import { frameFor } from './fixtures/wire.js'

const STREAM = '0123456789abcdef'

const text = (seq: number, body = ''): Message => ({
  type: 'TEXT',
  stream: STREAM,
  seq,
  sentAt: 1,
  text: body,
})

/** The highest seq the client was acknowledged (ACK_UPTO), 0 for none. */
const ackedUpTo = (inbox: Message[]) =>
  inbox.reduce((n, m) => (m.type === 'ACK_UPTO' && m.stream === STREAM ? Math.max(n, m.seq) : n), 0)

describe('chat bounds against a peer that sends but does not read', () => {
  it('holds one pending acknowledgement for it however many reads it sends, and the last one still arrives', async () => {
    // A small window on the wire: the peer's writer is blocked after a few acknowledgements.
    const c = await rawClient({ rateLimit: false }, { highWaterMark: 1024 })
    c.conn.send(frameFor(text(1, 'first')))
    await expect.poll(() => ackedUpTo(c.inbox)).toBe(1)
    c.conn.pause()
    // Each send is its own read on the peer: without coalescing each read queues one more ACK_UPTO.
    const reads = 2_000
    for (let seq = 2; seq <= reads + 1; seq++) {
      c.conn.send(frameFor(text(seq, 'x')))
      // Let it arrive on its own rather than coalesced with the next sends.
      await new Promise((resolve) => setImmediate(resolve))
    }
    await expect.poll(() => c.delivered(), { timeout: 10_000 }).toBe(reads + 1)
    expect(c.errors).toEqual([])
    // What waits for the client is the 1 KiB window's worth at most plus one ACK_UPTO, not 2,000 of them.
    expect(c.peer.resources().heldBytes).toBeLessThan(64)

    c.conn.resume()
    await expect.poll(() => ackedUpTo(c.inbox)).toBe(reads + 1)
    expect(c.conn.status).toBe('open')
  })

  it('lets a link re-send one window of duplicates for free, then charges them to the rate budget', async () => {
    const c = await rawClient({ rateLimit: { perSecond: 1, burst: 50 }, inFlight: { messages: 100 } })
    c.conn.send(frameFor(text(1)))
    await expect.poll(() => ackedUpTo(c.inbox)).toBe(1)
    // Duplicates packed into one large record, which the small-record budget does not look at.
    const duplicates = (n: number) => Buffer.concat(Array.from({ length: n }, () => frameFor(text(1))))
    const pongs = () => c.inbox.filter((m) => m.type === 'PONG').length

    // One window's worth (what an honest sender re-sends after a reconnect) costs nothing.
    c.conn.send(duplicates(100))
    c.conn.send(frameFor({ type: 'PING', nonce: 7 }))
    await expect.poll(pongs).toBe(1)
    expect(c.errors).toEqual([])

    // Past it, each costs a token: the 49 left run out and the link is cut for it.
    c.conn.send(duplicates(100))
    c.conn.send(frameFor({ type: 'PING', nonce: 8 }))
    await expect.poll(() => c.errors.map((e) => e.code), { timeout: 5_000 }).toContain('LIMIT_EXCEEDED')
    await c.closed
    expect(pongs()).toBe(1)
    expect(c.delivered()).toBe(1)
  })
})
