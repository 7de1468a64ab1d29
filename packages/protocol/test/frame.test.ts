import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import {
  CONTROL_CHANNEL,
  DEFAULT_MAX_FRAME_SIZE,
  decodeMessage,
  encodeFrame,
  encodeMessage,
  FrameDecoder,
  frameMessage,
  Limits,
  type Message,
  type MessageTypeName,
  ProtocolErrorCode,
  splitChannel,
} from '../src/index.js'
import { allTypes, channelBody, expectProtocolError, fromHex, hexOf, PEER_A, samples } from './fixtures.js'

const concat = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts))

/** The channel each sample travels on when both sides run chat and peers: control 0, chat 1, peers 2. */
const channelOf: Record<MessageTypeName, number> = {
  HELLO: 0,
  WELCOME: 0,
  REJECT: 0,
  PING: 0,
  PONG: 0,
  GOODBYE: 0,
  TEXT: 1,
  ACK: 1,
  ACK_UPTO: 1,
  PEERS_REQUEST: 2,
  PEERS: 2,
}
const sampleList: Message[] = allTypes.map((t) => samples[t])
const stream = concat(allTypes.map((t) => frameMessage(samples[t], { channel: channelOf[t] })))
const sampleBodies = allTypes.map((t) => hexOf(channelBody(channelOf[t], samples[t])))

/** Pushes `chunks` into a fresh decoder and returns the hex of every body, in order. */
function decodeChunks(chunks: Uint8Array[], decoder = new FrameDecoder()): string[] {
  const bodies = chunks.flatMap((chunk) => decoder.push(chunk))
  decoder.end()
  return bodies.map(hexOf)
}

/** The message in a frame body, after checking that it travels on `channel`. */
function messageOn(channel: number, body: Uint8Array): Message {
  const split = splitChannel(body)
  expect(split.channel).toBe(channel)
  return decodeMessage(split.message)
}

/** A frame header announcing `length` bytes. */
function prefix(length: number): Uint8Array {
  const bytes = new Uint8Array(4)
  new DataView(bytes.buffer).setUint32(0, length)
  return bytes
}

describe('encodeFrame / frameMessage', () => {
  it('prefixes the body with its u32 big-endian length', () => {
    expect(hexOf(encodeFrame(fromHex('00 30 12345678')))).toBe('00000006003012345678')
    const body = new Uint8Array(0x010203)
    expect(hexOf(encodeFrame(body).subarray(0, 4))).toBe('00010203')
  })

  it.each(allTypes)(
    'frameMessage(%s) is the length, then the channel byte, then the message body',
    (type) => {
      const msg = samples[type]
      const body = encodeMessage(msg)
      for (const channel of [CONTROL_CHANNEL, 1, 2, 0xff]) {
        const frame = frameMessage(msg, { channel })
        expect(new DataView(frame.buffer, frame.byteOffset).getUint32(0)).toBe(1 + body.length)
        expect(frame[4]).toBe(channel)
        expect(hexOf(frame.subarray(5))).toBe(hexOf(body))
        expect(hexOf(frame)).toBe(hexOf(encodeFrame(channelBody(channel, msg))))
      }
    },
  )

  it('puts a message on the control channel (0) unless told otherwise', () => {
    expect(hexOf(frameMessage(samples.PING))).toBe('00000006 00 30 00000000'.replace(/ /g, ''))
    expect(hexOf(frameMessage(samples.PING, {}))).toBe(hexOf(frameMessage(samples.PING, { channel: 0 })))
  })

  it('refuses a channel that does not fit its byte', () => {
    for (const channel of [-1, 256, 1.5, Number.NaN]) {
      expect(() => frameMessage(samples.PING, { channel })).toThrow(RangeError)
    }
  })

  it('refuses an empty body and a body above the limit, the channel byte counting', () => {
    expectProtocolError(() => encodeFrame(new Uint8Array(0)), ProtocolErrorCode.EMPTY_FRAME)
    expectProtocolError(
      () => encodeFrame(new Uint8Array(11), { maxFrameSize: 10 }),
      ProtocolErrorCode.FRAME_TOO_LARGE,
    )
    expect(encodeFrame(new Uint8Array(10), { maxFrameSize: 10 })).toHaveLength(14)
    // GOODBYE "abc" is 6 bytes of message, 7 of frame body with its channel.
    expect(frameMessage({ type: 'GOODBYE', reason: 'abc' }, { maxFrameSize: 7 })).toHaveLength(11)
    expectProtocolError(
      () => frameMessage({ type: 'GOODBYE', reason: 'abc' }, { maxFrameSize: 6 }),
      ProtocolErrorCode.FRAME_TOO_LARGE,
    )
  })

  it('refuses a PEERS message that fits its list limits but not the default frame size', () => {
    const addrs = Array<string>(Limits.addresses).fill('a'.repeat(Limits.addressBytes))
    const msg: Message = {
      type: 'PEERS',
      peers: Array(Limits.peers).fill({ peerId: PEER_A, name: 'n'.repeat(64), addrs, lastSeen: 0 }),
    }
    expect(encodeMessage(msg).length).toBeGreaterThan(DEFAULT_MAX_FRAME_SIZE)
    const err = expectProtocolError(
      () => frameMessage(msg, { channel: 2 }),
      ProtocolErrorCode.FRAME_TOO_LARGE,
    )
    expect(err.message).toBe('frame of 1080324 bytes exceeds the 1048576-byte limit')
  })
})

describe('splitChannel', () => {
  it('returns the channel and a view of the message after it', () => {
    const body = channelBody(7, samples.GOODBYE)
    const { channel, message } = splitChannel(body)
    expect(channel).toBe(7)
    expect(message.buffer).toBe(body.buffer)
    expect(message.byteOffset).toBe(body.byteOffset + 1)
    expect(decodeMessage(message)).toEqual(samples.GOODBYE)
    expect(splitChannel(fromHex('ff 20'))).toEqual({ channel: 0xff, message: fromHex('20') })
  })

  it('refuses a body with no message after the channel byte', () => {
    expectProtocolError(() => splitChannel(new Uint8Array(0)), ProtocolErrorCode.EMPTY_FRAME)
    expectProtocolError(() => splitChannel(fromHex('00')), ProtocolErrorCode.EMPTY_FRAME)
    // A one-byte frame passes the decoder (its length is not 0) and fails here.
    const [body] = new FrameDecoder().push(fromHex('00000001 01'))
    expectProtocolError(() => splitChannel(body!), ProtocolErrorCode.EMPTY_FRAME)
  })

  it('leaves the message to decodeMessage: it does not judge the channel or the type', () => {
    const { channel, message } = splitChannel(fromHex('09 7f'))
    expect(channel).toBe(9)
    expectProtocolError(() => decodeMessage(message), ProtocolErrorCode.UNKNOWN_TYPE)
  })
})

describe('FrameDecoder', () => {
  it('decodes the stream identically when split in two at every byte position', () => {
    expect(decodeChunks([stream])).toEqual(sampleBodies)
    for (let cut = 0; cut <= stream.length; cut++) {
      expect(decodeChunks([stream.subarray(0, cut), stream.subarray(cut)])).toEqual(sampleBodies)
    }
  })

  it('decodes the stream fed one byte at a time, holding only the unfinished frame', () => {
    const decoder = new FrameDecoder()
    const bodies: string[] = []
    for (let i = 0; i < stream.length; i++) {
      for (const body of decoder.push(stream.subarray(i, i + 1))) bodies.push(hexOf(body))
      expect(decoder.buffered).toBeLessThanOrEqual(4 + Math.max(...sampleBodies.map((b) => b.length / 2)))
    }
    expect(bodies).toEqual(sampleBodies)
    expect(bodies.map((b, i) => messageOn(channelOf[allTypes[i]!], fromHex(b)))).toEqual(sampleList)
    expect(decoder.buffered).toBe(0)
    expect(decoder.heldBytes).toBe(0)
  })

  it('returns many frames from one chunk, in order', () => {
    const messages = Array.from({ length: 1000 }, (_, i): Message => ({ type: 'PING', nonce: i }))
    const bodies = new FrameDecoder().push(
      concat(messages.map((m, i) => frameMessage(m, { channel: i % 3 }))),
    )
    expect(bodies.map((b, i) => messageOn(i % 3, b))).toEqual(messages)
  })

  it('returns a body inside one chunk as a view of that chunk (zero copy), holding nothing', () => {
    const chunk = concat([frameMessage(samples.PING), frameMessage(samples.GOODBYE, { channel: 4 })])
    const decoder = new FrameDecoder()
    const [first, second] = decoder.push(chunk)
    expect(first!.buffer).toBe(chunk.buffer)
    expect(first!.byteOffset).toBe(4)
    expect(second!.buffer).toBe(chunk.buffer)
    expect(second!.byteOffset).toBe(4 + 6 + 4)
    expect(messageOn(4, second!)).toEqual(samples.GOODBYE)
    expect(decoder.heldBytes).toBe(0)
  })

  it('assembles a body that spans chunks into its own buffer', () => {
    const frame = frameMessage(samples.HELLO)
    const decoder = new FrameDecoder()
    expect(decoder.push(frame.subarray(0, 2))).toEqual([])
    expect(decoder.heldBytes).toBe(0) // a partial prefix costs no buffer
    expect(decoder.push(frame.subarray(2, 20))).toEqual([])
    expect(decoder.buffered).toBe(16) // the prefix is consumed once read: only body bytes are held
    // One buffer for the body, of exactly its size: a frame below the first assembly size gets no more.
    expect(decoder.heldBytes).toBe(frame.length - 4)
    const [body] = decoder.push(frame.subarray(20))
    frame.fill(0) // the body is a copy: clobbering the chunks must not change it
    expect(messageOn(0, body!)).toEqual(samples.HELLO)
    expect(decoder.buffered).toBe(0)
    expect(decoder.heldBytes).toBe(0) // the buffer went out with the body
  })

  it('accepts a body exactly at the limit and rejects one byte more', () => {
    const atLimit = new Uint8Array(DEFAULT_MAX_FRAME_SIZE).fill(7)
    const [body] = new FrameDecoder().push(encodeFrame(atLimit))
    expect(body).toHaveLength(DEFAULT_MAX_FRAME_SIZE)

    const small = new FrameDecoder({ maxFrameSize: 10 })
    expect(small.push(concat([prefix(10), new Uint8Array(10)]))).toHaveLength(1)
    expectProtocolError(() => small.push(prefix(11)), ProtocolErrorCode.FRAME_TOO_LARGE)

    expectProtocolError(
      () => new FrameDecoder().push(prefix(DEFAULT_MAX_FRAME_SIZE + 1)),
      ProtocolErrorCode.FRAME_TOO_LARGE,
    )
  })

  it('rejects a 0xFFFFFFFF prefix at once, without allocating or buffering', () => {
    const decoder = new FrameDecoder()
    expect(decoder.push(fromHex('ff'))).toEqual([])
    expect(decoder.push(fromHex('ffff'))).toEqual([])
    const before = process.memoryUsage().arrayBuffers
    const err = expectProtocolError(() => decoder.push(fromHex('ff')), ProtocolErrorCode.FRAME_TOO_LARGE)
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(DEFAULT_MAX_FRAME_SIZE)
    expect(err.message).toBe('frame of 4294967295 bytes exceeds the 1048576-byte limit')
    expect(decoder.buffered).toBe(0)
    expect(decoder.heldBytes).toBe(0)
    expect(decoder.error).toBe(err)
    // Failed for good: the same error, whatever comes next.
    expect(() => decoder.push(frameMessage(samples.PING))).toThrow(err)
    expect(() => decoder.end()).toThrow(err)
  })

  it('rejects a zero length prefix with EMPTY_FRAME', () => {
    expectProtocolError(() => new FrameDecoder().push(fromHex('00000000')), ProtocolErrorCode.EMPTY_FRAME)
  })

  it('delivers the frames before a bad prefix in the same chunk, then fails', () => {
    const decoder = new FrameDecoder()
    const chunk = concat([
      frameMessage(samples.PING),
      frameMessage(samples.TEXT, { channel: 1 }),
      fromHex('ffffffff 00'),
    ])
    const bodies = decoder.push(chunk)
    expect([messageOn(0, bodies[0]!), messageOn(1, bodies[1]!)]).toEqual([samples.PING, samples.TEXT])
    expect(bodies).toHaveLength(2)
    expect(decoder.error?.code).toBe(ProtocolErrorCode.FRAME_TOO_LARGE)
    expect(decoder.buffered).toBe(0)
    expect(() => decoder.push(frameMessage(samples.PING))).toThrow(decoder.error)
  })

  it('returns a body as a view of its chunk when the prefix came in the chunk before', () => {
    const frame = frameMessage(samples.GOODBYE)
    const decoder = new FrameDecoder()
    expect(decoder.push(frame.subarray(0, 4))).toEqual([])
    expect(decoder.heldBytes).toBe(0)
    const chunk = new Uint8Array(frame.subarray(4))
    const [body] = decoder.push(chunk)
    expect(body!.buffer).toBe(chunk.buffer)
    expect(messageOn(0, body!)).toEqual(samples.GOODBYE)
  })

  it('releases a half-assembled body when it fails', () => {
    const decoder = new FrameDecoder()
    const frame = frameMessage(samples.HELLO)
    decoder.push(frame.subarray(0, 10))
    expect(decoder.heldBytes).toBeGreaterThan(0)
    expectProtocolError(() => decoder.end(), ProtocolErrorCode.TRUNCATED)
    expect(decoder.heldBytes).toBe(0)
    expect(decoder.buffered).toBe(0)
  })

  it('delivers a frame completed by the same chunk that carries a bad prefix split across chunks', () => {
    const decoder = new FrameDecoder()
    const frame = frameMessage(samples.GOODBYE, { channel: 3 })
    expect(decoder.push(frame.subarray(0, 6))).toEqual([])
    const bodies = decoder.push(concat([frame.subarray(6), fromHex('0000')]))
    expect(bodies.map((b) => messageOn(3, b))).toEqual([samples.GOODBYE])
    expectProtocolError(() => decoder.push(fromHex('0000')), ProtocolErrorCode.EMPTY_FRAME)
  })

  it('end() passes on a clean boundary and throws TRUNCATED inside a frame', () => {
    const decoder = new FrameDecoder()
    decoder.push(frameMessage(samples.PING))
    expect(() => decoder.end()).not.toThrow()
    decoder.push(fromHex('00000006 00 30'))
    expect(decoder.buffered).toBe(2)
    expectProtocolError(() => decoder.end(), ProtocolErrorCode.TRUNCATED)
    expectProtocolError(() => decoder.push(fromHex('00')), ProtocolErrorCode.TRUNCATED)
  })

  it('end() throws TRUNCATED right after a length prefix, before any body byte', () => {
    const decoder = new FrameDecoder()
    decoder.push(fromHex('00000006'))
    expect(decoder.buffered).toBe(0)
    expectProtocolError(() => decoder.end(), ProtocolErrorCode.TRUNCATED)
  })

  it('ignores empty chunks', () => {
    const decoder = new FrameDecoder()
    expect(decoder.push(new Uint8Array(0))).toEqual([])
    expect(decodeChunks([new Uint8Array(0), stream, new Uint8Array(0)], decoder)).toEqual(sampleBodies)
  })

  it('refuses a maxFrameSize that no prefix can express', () => {
    expect(() => new FrameDecoder({ maxFrameSize: 0 })).toThrow(RangeError)
    expect(() => new FrameDecoder({ maxFrameSize: 2 ** 32 })).toThrow(RangeError)
    expect(() => new FrameDecoder({ maxFrameSize: 1.5 })).toThrow(RangeError)
  })
})

describe('FrameDecoder.pushMessages', () => {
  it('returns each message as a view after its channel byte, the channel at the same index', () => {
    const chunk = concat([frameMessage(samples.PING), frameMessage(samples.TEXT, { channel: 7 })])
    const channels: number[] = []
    const [ping, text] = new FrameDecoder().pushMessages(chunk, channels)
    expect(channels).toEqual([0, 7])
    expect([decodeMessage(ping!), decodeMessage(text!)]).toEqual([samples.PING, samples.TEXT])
    expect(ping!.buffer).toBe(chunk.buffer)
    expect(ping!.byteOffset).toBe(4 + 1)
  })

  it('splits a body assembled across chunks the same way', () => {
    const frame = frameMessage(samples.HELLO, { channel: 0 })
    const decoder = new FrameDecoder()
    const channels: number[] = []
    expect(decoder.pushMessages(frame.subarray(0, 9), channels)).toEqual([])
    const [hello] = decoder.pushMessages(frame.subarray(9), channels)
    frame.fill(0xff)
    expect(channels).toEqual([0])
    expect(decodeMessage(hello!)).toEqual(samples.HELLO)
  })

  it('fails at a 1-byte length prefix with EMPTY_FRAME, after the frames before it', () => {
    const decoder = new FrameDecoder()
    const channels: number[] = []
    // The prefix alone is enough: its frame could hold a channel and no message.
    const messages = decoder.pushMessages(concat([frameMessage(samples.PING), prefix(1)]), channels)
    expect(messages.map((m) => decodeMessage(m))).toEqual([samples.PING])
    expect(decoder.error?.code).toBe(ProtocolErrorCode.EMPTY_FRAME)
    expect(() => decoder.pushMessages(fromHex('01'), channels)).toThrow(decoder.error)
    // push, which returns whole bodies, takes a 1-byte body: the channel byte is its caller's business.
    expect(new FrameDecoder().push(concat([prefix(1), fromHex('05')]))).toEqual([fromHex('05')])
  })

  it('fails a 1-byte frame whose prefix push() read before the stream switched to messages', () => {
    // A link reads its handshake with push() and everything after with pushMessages(): a prefix can
    // straddle the switch, and its frame must not reach a service as an empty message.
    const decoder = new FrameDecoder()
    expect(decoder.push(concat([frameMessage(samples.PING), prefix(1)]))).toHaveLength(1)
    const channels: number[] = []
    expectProtocolError(() => decoder.pushMessages(fromHex('05'), channels), ProtocolErrorCode.EMPTY_FRAME)
    expect(channels).toEqual([])
    expect(decoder.error?.code).toBe(ProtocolErrorCode.EMPTY_FRAME)
  })
})

describe('FrameDecoder memory', () => {
  /** The bound the decoder promises: twice the body bytes received, plus the first assembly size. */
  const bound = (received: number): number => 2 * received + 16 * 1024

  it('holds memory in proportion to what arrived, not to what a max-size frame announced', () => {
    const body = new Uint8Array(DEFAULT_MAX_FRAME_SIZE)
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >>> 8)) & 0xff
    const decoder = new FrameDecoder()
    expect(decoder.push(prefix(DEFAULT_MAX_FRAME_SIZE))).toEqual([])
    expect(decoder.heldBytes).toBeLessThanOrEqual(bound(0))
    let worst = 0 // largest heldBytes - bound(N) seen, which must stay ≤ 0
    let out: Uint8Array[] = []
    for (let n = 1; n <= body.length; n++) {
      out = decoder.push(body.subarray(n - 1, n))
      if (n < body.length) {
        worst = Math.max(worst, decoder.heldBytes - bound(n))
        if (out.length !== 0 || decoder.buffered !== n) throw new Error(`wrong state after ${n} bytes`)
      }
      if (n === 1000) expect(decoder.heldBytes).toBeLessThanOrEqual(bound(1000))
    }
    expect(worst).toBeLessThanOrEqual(0)
    expect(out).toHaveLength(1)
    expect(Buffer.compare(out[0]!, body)).toBe(0)
    expect(decoder.heldBytes).toBe(0)
  })

  it('holds no more than the bound for a 4 GiB announcement trickling in', () => {
    const decoder = new FrameDecoder({ maxFrameSize: 0xffff_ffff })
    decoder.push(prefix(0xffff_ffff))
    for (let n = 1; n <= 100_000; n++) decoder.push(Uint8Array.of(n & 0xff))
    expect(decoder.buffered).toBe(100_000)
    expect(decoder.heldBytes).toBeLessThanOrEqual(bound(100_000))
    expect(decoder.heldBytes).toBeGreaterThanOrEqual(100_000)
  })

  it('keeps no pushed chunk: the chunks of a body it is assembling can be collected', async () => {
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const decoder = new FrameDecoder()
    const refs: WeakRef<Uint8Array>[] = []
    // Each chunk is its own ArrayBuffer, dropped by the test right after the push.
    const feed = (bytes: Uint8Array): void => {
      const chunk = new Uint8Array(bytes)
      refs.push(new WeakRef(chunk))
      decoder.push(chunk)
    }
    const frame = frameMessage({ type: 'GOODBYE', reason: 'r'.repeat(200) })
    for (let i = 0; i < 100; i++) feed(frame.subarray(i, i + 1))
    // WeakRefs created in this job stay alive until it ends: let it end, then collect.
    await new Promise((resolve) => setImmediate(resolve))
    gc()
    expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0)
    const [body] = decoder.push(frame.subarray(100))
    expect(messageOn(0, body!)).toEqual({ type: 'GOODBYE', reason: 'r'.repeat(200) })
  })

  it('decodes a body that grows its buffer past the first size, split in two at every point', () => {
    // 16 KiB + 100 bytes of body: one split point per byte, each crossing the growth at another place.
    const msg: Message = { type: 'TEXT', stream: '0011223344556677', seq: 1, sentAt: 0, text: '' }
    const text = 'x'.repeat(16 * 1024 + 100 - 1 - encodeMessage(msg).length)
    const frame = frameMessage({ ...msg, text }, { channel: 1 })
    expect(frame.length).toBe(4 + 16 * 1024 + 100)
    const expected = frame.subarray(4)
    for (let cut = 1; cut < frame.length; cut++) {
      const decoder = new FrameDecoder()
      const bodies = [...decoder.push(frame.subarray(0, cut))]
      const received = Math.max(0, cut - 4)
      if (received < expected.length && decoder.heldBytes > bound(received)) {
        expect.fail(`split at ${cut}: ${decoder.heldBytes} bytes held for ${received} received`)
      }
      bodies.push(...decoder.push(frame.subarray(cut)))
      decoder.end()
      if (bodies.length !== 1 || Buffer.compare(bodies[0]!, expected) !== 0) {
        expect.fail(`split at ${cut} decoded differently`)
      }
    }
    expect(messageOn(1, frame.subarray(4))).toEqual({ ...msg, text })
  })
})
