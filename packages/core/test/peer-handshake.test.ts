import { once } from 'node:events'
import {
  decodeMessage,
  encodeMessage,
  FrameDecoder,
  type Message,
  PROTOCOL_VERSION,
  RejectCode,
} from '@parley/protocol'
import { describe, expect, it, onTestFinished } from 'vitest'
import { generateIdentity } from '../src/identity.js'
import { createPeer } from '../src/peer.js'
import { plaintextUpgrader } from '../src/secure/plaintext.js'
import type { Connection } from '../src/transport.js'
import { memoryNetwork, memoryTransport } from '../src/transports/memory.js'
import { decodeBody, frameFor, SERVICES } from './fixtures/wire.js'

// Raw connections speaking (or breaking) the protocol by hand against a real peer.

async function setup() {
  const network = memoryNetwork()
  // Plaintext pass-through: these tests speak the peer protocol by hand (the secure channel has its own tests).
  const peer = createPeer({
    transport: memoryTransport(network, { host: 'victim' }),
    name: 'victim',
    listen: 'victim:0',
    upgrader: plaintextUpgrader(),
  })
  await peer.start()
  onTestFinished(() => peer.stop())
  const raw = async (host: string) => {
    const conn = await memoryTransport(network, { host }).dial(peer.addresses[0]!)
    onTestFinished(() => conn.abort())
    return reader(conn)
  }
  return { network, peer, raw }
}

/** Reads whole messages from a raw connection. */
function reader(conn: Connection) {
  const decoder = new FrameDecoder()
  const messages: Message[] = []
  const waiters: Array<() => void> = []
  conn.on('data', (chunk) => {
    for (const body of decoder.push(chunk)) messages.push(decodeBody(body))
    for (const w of waiters.splice(0)) w()
  })
  // Behave like a well-mannered client: when the peer ends its side, end ours.
  conn.on('end', () => void conn.close())
  const closed = once(conn, 'close')
  return {
    conn,
    closed,
    send: (m: Message) => conn.send(frameFor(m)),
    async next(): Promise<Message> {
      const deadline = AbortSignal.timeout(2_000)
      while (messages.length === 0) {
        if (deadline.aborted) throw new Error('no message arrived')
        await new Promise<void>((resolve) => {
          waiters.push(resolve)
          deadline.addEventListener('abort', () => resolve(), { once: true })
        })
      }
      return messages.shift()!
    },
  }
}

const hello = (peerId: string, version = PROTOCOL_VERSION, name = 'raw'): Message => ({
  type: 'HELLO',
  version,
  peerId,
  name,
  listenAddrs: [],
  capabilities: [...SERVICES],
})

async function expectStillServing(raw: (host: string) => Promise<ReturnType<typeof reader>>) {
  const honest = await raw('honest')
  honest.send(hello(generateIdentity().peerId))
  expect((await honest.next()).type).toBe('WELCOME')
}

describe('peer handshake', () => {
  it('answers HELLO with WELCOME carrying its own identity', async () => {
    const { peer, raw } = await setup()
    const r = await raw('a')
    r.send(hello(generateIdentity().peerId))
    expect(await r.next()).toMatchObject({
      type: 'WELCOME',
      peerId: peer.id,
      name: 'victim',
      version: PROTOCOL_VERSION,
    })
  })

  it('rejects an incompatible protocol version with a reason instead of hanging', async () => {
    const { raw } = await setup()
    const r = await raw('a')
    // A future HELLO: version 4 and fields this version does not know; only channel, type and version are frozen.
    r.conn.send(Uint8Array.from([0, 0, 0, 5, 0x00, 0x01, 0x00, 0x04, 0xff]))
    const reply = await r.next()
    expect(reply).toMatchObject({ type: 'REJECT', code: RejectCode.INCOMPATIBLE_VERSION })
    expect((reply as { reason: string }).reason).toMatch(/version 3, not 4/)
    await r.closed
    await expectStillServing(raw)
  })

  it('tells a version 2 peer why it is refused, in the framing version 2 reads (no channel byte)', async () => {
    const { network, peer } = await setup()
    const conn = await memoryTransport(network, { host: 'old' }).dial(peer.addresses[0]!)
    onTestFinished(() => conn.abort())
    const chunks: Uint8Array[] = []
    conn.on('data', (chunk) => chunks.push(chunk))
    conn.on('end', () => void conn.close())
    const closed = once(conn, 'close')
    conn.send(Uint8Array.from([0, 0, 0, 4, 0x01, 0x00, 0x02, 0xff]))
    await closed
    const bodies = new FrameDecoder().push(Buffer.concat(chunks))
    expect(bodies).toHaveLength(1)
    expect(decodeMessage(bodies[0]!)).toMatchObject({ type: 'REJECT', code: RejectCode.INCOMPATIBLE_VERSION })
  })

  it('a dialer told no by a version 2 listener (a REJECT without channel byte) reports INCOMPATIBLE_VERSION', async () => {
    const network = memoryNetwork()
    const old = await memoryTransport(network, { host: 'old' }).listen('old:0', (conn) => {
      conn.once('data', () => {
        // What a version 2 peer answers a HELLO it cannot read: REJECT PROTOCOL_VIOLATION, no channel byte.
        const body = Buffer.from(
          encodeMessage({ type: 'REJECT', code: RejectCode.PROTOCOL_VIOLATION, reason: 'bad HELLO' }),
        )
        const frame = Buffer.alloc(4 + body.length)
        frame.writeUInt32BE(body.length)
        body.copy(frame, 4)
        conn.send(frame)
        void conn.close()
      })
    })
    onTestFinished(() => old.close())
    const dialer = createPeer({
      transport: memoryTransport(network, { host: 'new' }),
      listen: false,
      upgrader: plaintextUpgrader(),
    })
    await dialer.start()
    onTestFinished(() => dialer.stop())
    await expect(dialer.connect(old.address)).rejects.toMatchObject({
      code: 'INCOMPATIBLE_VERSION',
      message: expect.stringMatching(/older Parley protocol/),
    })
  })

  it('refuses to start with a display name the wire refuses, and closes a connection whose HELLO carries one', async () => {
    const network = memoryNetwork()
    for (const name of ['bob\x1b[2J', 'bob ', '\u202ebob']) {
      expect(() => createPeer({ transport: memoryTransport(network), name })).toThrow(
        expect.objectContaining({ code: 'INVALID_NAME' }),
      )
    }
    const { peer, raw } = await setup()
    const r = await raw('a')
    const body = Buffer.from(encodeMessage(hello(generateIdentity().peerId, PROTOCOL_VERSION, 'x')))
    // Swap the one-byte name "x" for "b ESC [ H", past what an encoder allows.
    const at = body.indexOf(Buffer.from([0, 1, 0x78]))
    const bad = Buffer.concat([
      body.subarray(0, at),
      Buffer.from([0, 4, 0x62, 0x1b, 0x5b, 0x48]),
      body.subarray(at + 3),
    ])
    const frame = Buffer.alloc(5 + bad.length) // length, channel 0 (control), the message
    frame.writeUInt32BE(1 + bad.length, 0)
    bad.copy(frame, 5)
    r.conn.send(frame)
    await r.closed
    expect(peer.peers().connected).toHaveLength(0)
  })

  it('refuses a HELLO that claims its own id', async () => {
    const { peer, raw } = await setup()
    const r = await raw('a')
    r.send(hello(peer.id))
    expect(await r.next()).toMatchObject({ type: 'REJECT', code: RejectCode.SELF_CONNECT })
  })

  it('closes a connection that sends TEXT before HELLO, and keeps serving others', async () => {
    const { raw } = await setup()
    const r = await raw('a')
    r.send({ type: 'TEXT', stream: '0'.repeat(16), seq: 1, sentAt: 0, text: 'too early' })
    await r.closed
    await expectStillServing(raw)
  })

  it('closes a connection that sends a second HELLO after the handshake', async () => {
    const { raw } = await setup()
    const r = await raw('a')
    const id = generateIdentity().peerId
    r.send(hello(id))
    await r.next()
    r.send(hello(id))
    await r.closed
    await expectStillServing(raw)
  })

  it('closes a connection that sends garbage, delivering what came before it', async () => {
    const { peer, raw } = await setup()
    const got: string[] = []
    peer.on('message', (m) => got.push(m.text))
    const r = await raw('a')
    r.send(hello(generateIdentity().peerId))
    await r.next()
    const text = frameFor({ type: 'TEXT', stream: '1'.repeat(16), seq: 1, sentAt: 1, text: 'accepted' })
    // A valid TEXT and then a length prefix of 4 GiB in the same chunk.
    r.conn.send(Buffer.concat([text, Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3])]))
    await r.closed
    expect(got).toEqual(['accepted'])
    await expectStillServing(raw)
  })

  it('acknowledges a re-sent TEXT again but delivers it once', async () => {
    const { peer, raw } = await setup()
    const got: string[] = []
    peer.on('message', (m) => got.push(m.text))
    const r = await raw('a')
    r.send(hello(generateIdentity().peerId))
    await r.next()
    const text: Message = { type: 'TEXT', stream: 'ab'.repeat(8), seq: 1, sentAt: 1, text: 'once' }
    r.send(text)
    expect(await r.next()).toEqual({ type: 'ACK_UPTO', stream: 'ab'.repeat(8), seq: 1 })
    r.send(text)
    expect(await r.next()).toEqual({ type: 'ACK_UPTO', stream: 'ab'.repeat(8), seq: 1 })
    expect(got).toEqual(['once'])
  })

  it('a stopped peer refuses to connect or send with a rejected promise, not a throw', async () => {
    const { peer } = await setup()
    await peer.stop()
    await expect(peer.connect('elsewhere:1')).rejects.toMatchObject({ code: 'NOT_RUNNING' })
    await expect(peer.send('elsewhere:1', 'hi')).rejects.toMatchObject({ code: 'NOT_RUNNING' })
  })
})
