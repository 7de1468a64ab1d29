import { once } from 'node:events'
import {
  AckStatus,
  decodeMessage,
  FrameDecoder,
  frameMessage,
  type Message,
  PROTOCOL_VERSION,
} from '@parley/protocol'
import { describe, expect, it, onTestFinished } from 'vitest'
import { generateIdentity } from '../src/identity.js'
import { createPeer, type Peer } from '../src/peer.js'
import type { PeerInit } from '../src/peer-types.js'
import { plaintextUpgrader } from '../src/secure/upgrader.js'
import type { Connection } from '../src/transport.js'
import { memoryNetwork, memoryTransport } from '../src/transports/memory.js'

// The peer's reliability mechanisms at the frame level: the in-flight budget, aborts while waiting,
// what a peer cut off for a violation is told. Plaintext on purpose: these tests read and write the
// peer protocol byte for byte (the encrypted path is exercised end to end in packages/testing).

async function setup(init: Partial<PeerInit> = {}) {
  const network = memoryNetwork()
  const peer = createPeer({
    transport: memoryTransport(network, { host: 'peer' }),
    name: 'peer',
    listen: 'peer:0',
    upgrader: plaintextUpgrader(),
    ...init,
  })
  await peer.start()
  onTestFinished(() => peer.stop())
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
      capabilities: [],
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
    for (const body of decoder.push(chunk)) messages.push(decodeMessage(body))
    for (const w of waiters) w()
  })
  conn.on('end', () => void conn.close().catch(() => {}))
  const closed = once(conn, 'close')
  return {
    conn,
    closed,
    messages,
    send: (m: Message) => conn.send(frameMessage(m)),
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
    const texts = () => c.messages.filter((m) => m.type === 'TEXT') as Array<{ id: string }>
    expect(texts()).toHaveLength(2)
    c.send({ type: 'ACK', id: texts()[0]!.id, status: AckStatus.DELIVERED })
    await sync(c, 2)
    expect(texts()).toHaveLength(3)
    for (const t of texts()) c.send({ type: 'ACK', id: t.id, status: AckStatus.DELIVERED })
    await sync(c, 3)
    expect(texts()).toHaveLength(5)
    for (const t of texts().slice(3)) c.send({ type: 'ACK', id: t.id, status: AckStatus.DELIVERED })
    await sync(c, 4)
    c.send({ type: 'ACK', id: texts()[5]!.id, status: AckStatus.DELIVERED })
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
    const t1 = (await c.next('TEXT')) as { id: string; text: string }
    c.send({ type: 'ACK', id: t1.id, status: AckStatus.DELIVERED })
    await first
    const t3 = (await c.next('TEXT')) as { id: string; text: string }
    expect(t3.text).toBe('third')
    c.send({ type: 'ACK', id: t3.id, status: AckStatus.DELIVERED })
    await expect(third).resolves.toMatchObject({ id: t3.id })
  })
})

describe('cut off for a violation', () => {
  it('gets the ACKs of what was accepted and a GOODBYE with the reason before the close', async () => {
    const { peer, client } = await setup({ rateLimit: { perSecond: 1, burst: 3 } })
    const got: string[] = []
    peer.on('message', (m) => got.push(m.text))
    const c = await client()
    const ids = Array.from({ length: 5 }, (_, i) => `${i}`.repeat(32))
    c.conn.send(
      Buffer.concat(ids.map((id, i) => frameMessage({ type: 'TEXT', id, sentAt: i, text: `t${i}` }))),
    )
    await c.closed
    expect(got).toEqual(['t0', 't1', 't2'])
    expect(c.messages).toEqual([
      { type: 'ACK', id: ids[0], status: AckStatus.DELIVERED },
      { type: 'ACK', id: ids[1], status: AckStatus.DELIVERED },
      { type: 'ACK', id: ids[2], status: AckStatus.DELIVERED },
      { type: 'ACK', id: ids[3], status: AckStatus.REFUSED },
      { type: 'GOODBYE', reason: expect.stringMatching(/more than 1 messages\/s/) },
    ])
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
      capabilities: [] as string[],
    }
    conn.send(
      Buffer.concat([
        frameMessage({ ...hello, version: PROTOCOL_VERSION + 1 }),
        frameMessage({ ...hello, version: PROTOCOL_VERSION }),
      ]),
    )
    expect(await c.next()).toMatchObject({ type: 'REJECT' })
    await c.closed
    expect(errors.filter((e) => e instanceof TypeError)).toEqual([])
  })
})
