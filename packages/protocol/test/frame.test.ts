import { describe, expect, it } from 'vitest'
import {
  DEFAULT_MAX_FRAME_SIZE,
  decodeMessage,
  encodeFrame,
  encodeMessage,
  FrameDecoder,
  frameMessage,
  Limits,
  type Message,
  ProtocolErrorCode,
} from '../src/index.js'
import { allTypes, expectProtocolError, fromHex, hexOf, PEER_A, samples } from './fixtures.js'

const concat = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts))
const sampleList: Message[] = allTypes.map((t) => samples[t])
const stream = concat(sampleList.map((m) => frameMessage(m)))
const sampleBodies = sampleList.map((m) => hexOf(encodeMessage(m)))

/** Pushes `chunks` into a fresh decoder and returns the hex of every body, in order. */
function decodeChunks(chunks: Uint8Array[], decoder = new FrameDecoder()): string[] {
  const bodies = chunks.flatMap((chunk) => decoder.push(chunk))
  decoder.end()
  return bodies.map(hexOf)
}

/** A frame header announcing `length` bytes. */
function prefix(length: number): Uint8Array {
  const bytes = new Uint8Array(4)
  new DataView(bytes.buffer).setUint32(0, length)
  return bytes
}

describe('encodeFrame / frameMessage', () => {
  it('prefixes the body with its u32 big-endian length', () => {
    expect(hexOf(encodeFrame(fromHex('30 12345678')))).toBe('000000053012345678')
    const body = new Uint8Array(0x010203)
    expect(hexOf(encodeFrame(body).subarray(0, 4))).toBe('00010203')
  })

  it.each(allTypes)('frameMessage(%s) equals encodeFrame(encodeMessage(msg))', (type) => {
    expect(hexOf(frameMessage(samples[type]))).toBe(hexOf(encodeFrame(encodeMessage(samples[type]))))
  })

  it('refuses an empty body and a body above the limit', () => {
    expectProtocolError(() => encodeFrame(new Uint8Array(0)), ProtocolErrorCode.EMPTY_FRAME)
    expectProtocolError(
      () => encodeFrame(new Uint8Array(11), { maxFrameSize: 10 }),
      ProtocolErrorCode.FRAME_TOO_LARGE,
    )
    expect(encodeFrame(new Uint8Array(10), { maxFrameSize: 10 })).toHaveLength(14)
    expectProtocolError(
      () => frameMessage({ type: 'GOODBYE', reason: 'abc' }, { maxFrameSize: 5 }),
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
    const err = expectProtocolError(() => frameMessage(msg), ProtocolErrorCode.FRAME_TOO_LARGE)
    expect(err.message).toBe('frame of 1080323 bytes exceeds the 1048576-byte limit')
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
    expect(decoder.buffered).toBe(0)
  })

  it('returns many frames from one chunk, in order', () => {
    const messages = Array.from({ length: 1000 }, (_, i): Message => ({ type: 'PING', nonce: i }))
    const bodies = new FrameDecoder().push(concat(messages.map((m) => frameMessage(m))))
    expect(bodies.map((b) => decodeMessage(b))).toEqual(messages)
  })

  it('returns a body inside one chunk as a view of that chunk (zero copy)', () => {
    const chunk = concat([frameMessage(samples.PING), frameMessage(samples.GOODBYE)])
    const [first, second] = new FrameDecoder().push(chunk)
    expect(first!.buffer).toBe(chunk.buffer)
    expect(first!.byteOffset).toBe(4)
    expect(second!.buffer).toBe(chunk.buffer)
    expect(second!.byteOffset).toBe(4 + 5 + 4)
    expect(decodeMessage(second!)).toEqual(samples.GOODBYE)
  })

  it('assembles a body that spans chunks into its own buffer', () => {
    const frame = frameMessage(samples.HELLO)
    const decoder = new FrameDecoder()
    expect(decoder.push(frame.subarray(0, 2))).toEqual([])
    expect(decoder.push(frame.subarray(2, 20))).toEqual([])
    expect(decoder.buffered).toBe(16) // the prefix is consumed once read: only body bytes are held
    const [body] = decoder.push(frame.subarray(20))
    frame.fill(0) // the body is a copy: clobbering the chunks must not change it
    expect(decodeMessage(body!)).toEqual(samples.HELLO)
    expect(decoder.buffered).toBe(0)
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
    const chunk = concat([frameMessage(samples.PING), frameMessage(samples.TEXT), fromHex('ffffffff 00')])
    const bodies = decoder.push(chunk)
    expect(bodies.map((b) => decodeMessage(b))).toEqual([samples.PING, samples.TEXT])
    expect(decoder.error?.code).toBe(ProtocolErrorCode.FRAME_TOO_LARGE)
    expect(decoder.buffered).toBe(0)
    expect(() => decoder.push(frameMessage(samples.PING))).toThrow(decoder.error)
  })

  it('delivers a frame completed by the same chunk that carries a bad prefix split across chunks', () => {
    const decoder = new FrameDecoder()
    const frame = frameMessage(samples.GOODBYE)
    expect(decoder.push(frame.subarray(0, 6))).toEqual([])
    const bodies = decoder.push(concat([frame.subarray(6), fromHex('0000')]))
    expect(bodies.map((b) => decodeMessage(b))).toEqual([samples.GOODBYE])
    expectProtocolError(() => decoder.push(fromHex('0000')), ProtocolErrorCode.EMPTY_FRAME)
  })

  it('end() passes on a clean boundary and throws TRUNCATED inside a frame', () => {
    const decoder = new FrameDecoder()
    decoder.push(frameMessage(samples.PING))
    expect(() => decoder.end()).not.toThrow()
    decoder.push(fromHex('00000005 30'))
    expect(decoder.buffered).toBe(1)
    expectProtocolError(() => decoder.end(), ProtocolErrorCode.TRUNCATED)
    expectProtocolError(() => decoder.push(fromHex('00')), ProtocolErrorCode.TRUNCATED)
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
