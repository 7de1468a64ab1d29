import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import * as node from '../src/index.js'
import { anyMessage, channel } from './arbitraries.js'

// The protocol takes Node's Buffer as a fast path when it finds one and otherwise uses Uint8Array,
// TextEncoder and TextDecoder alone. Both paths must give the same bytes, the same messages and the
// same errors. `portable` is the package loaded again with no Buffer on globalThis, as in a browser.
let portable: typeof node

beforeAll(async () => {
  vi.stubGlobal('Buffer', undefined)
  vi.resetModules()
  portable = await import('../src/index.js')
  vi.unstubAllGlobals()
})
afterAll(() => vi.resetModules())

/** What a call gives: its result, or the code of the ProtocolError it threw. */
function outcome<T>(fn: () => T): { ok: T } | { code: string } {
  try {
    return { ok: fn() }
  } catch (err) {
    if (err instanceof node.ProtocolError || err instanceof portable.ProtocolError) return { code: err.code }
    throw err
  }
}

const bytesOf = (view: Uint8Array) => Array.from(view)

describe('the portable path (no Buffer)', () => {
  it('is a separate load that really runs without Buffer', () => {
    expect(portable.encodeMessage).not.toBe(node.encodeMessage)
    // Its bytes are plain Uint8Arrays; Node's are Buffers.
    const msg: node.Message = { type: 'PING', nonce: 7 }
    expect(Buffer.isBuffer(portable.encodeMessage(msg))).toBe(false)
    expect(Buffer.isBuffer(node.encodeMessage(msg))).toBe(true)
  })

  it('encodes, frames and measures every message exactly as the Node path', () => {
    fc.assert(
      fc.property(anyMessage, channel, (msg, ch) => {
        expect(bytesOf(portable.encodeMessage(msg))).toEqual(bytesOf(node.encodeMessage(msg)))
        expect(bytesOf(portable.frameMessage(msg, { channel: ch, maxFrameSize: 0xffff_ffff }))).toEqual(
          bytesOf(node.frameMessage(msg, { channel: ch, maxFrameSize: 0xffff_ffff })),
        )
        expect(portable.encodedLength(msg)).toBe(node.encodedLength(msg))
        const body = node.encodeMessage(msg)
        expect(portable.decodeMessage(new Uint8Array(body))).toEqual(msg)
      }),
      { numRuns: 300 },
    )
  })

  it('measures any string, lone surrogates included, as the Node path', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 64 }),
        fc.string({ unit: 'binary-ascii' }),
        (a, b) => {
          // 'binary' code units include lone surrogates when cut apart; glue two to make some.
          const text = a + b.slice(0, 1) + a.slice(0, 1)
          expect(portable.utf8Length(text)).toBe(node.utf8Length(text))
          const lone = `${text}\uD800${text}`
          expect(portable.utf8Length(lone)).toBe(Buffer.byteLength(lone))
        },
      ),
    )
    // Every boundary of the UTF-8 length table, and surrogates in every wrong place.
    const edges = ['\u007f', '\u0080', '\u07ff', '\u0800', '\uffff', '\ud83d\ude00', '\udbff\udfff']
    const strays = ['\ud800', '\udbff', '\udc00', '\udfff', '\ud800\ud800', '\udc00\ud800', '\u4e00\udc00']
    for (const text of [
      ...edges,
      ...strays,
      ...strays.map((t) => `a${t}b`),
      ...strays.map((t) => `${t}\u0800`),
    ]) {
      expect(portable.utf8Length(text), JSON.stringify(text)).toBe(Buffer.byteLength(text))
    }
    // Long texts take the encode-to-measure path, and their next encode copies those bytes.
    for (const text of ['é'.repeat(2000), '👋'.repeat(1500), 'x'.repeat(5000)]) {
      const msg: node.Message = { type: 'GOODBYE', reason: text.slice(0, 40) }
      expect(portable.utf8Length(text)).toBe(Buffer.byteLength(text))
      const long: node.Message = { type: 'TEXT', stream: '0011223344556677', seq: 1, sentAt: 2, text }
      portable.utf8Length(text)
      expect(bytesOf(portable.encodeMessage(long))).toEqual(bytesOf(node.encodeMessage(long)))
      expect(portable.decodeMessage(portable.encodeMessage(long))).toEqual(long)
      expect(bytesOf(portable.encodeMessage(msg))).toEqual(bytesOf(node.encodeMessage(msg)))
    }
  })

  it('decodes any bytes to the same message or the same error code', () => {
    const typed = fc
      .tuple(fc.constantFrom(...Object.values(node.MessageType)), fc.uint8Array({ maxLength: 120 }))
      .map(([type, rest]) => Uint8Array.of(type, ...rest))
    fc.assert(
      fc.property(fc.oneof(typed, fc.uint8Array({ maxLength: 64 })), (body) => {
        expect(outcome(() => portable.decodeMessage(body))).toEqual(outcome(() => node.decodeMessage(body)))
      }),
      { numRuns: 2000 },
    )
  })

  it('rejects malformed UTF-8 in short and long strings, accepts it nowhere', () => {
    for (const bad of [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]]) {
      for (const pad of [0, 40, 1100]) {
        const text = [...new Array(pad).fill(0x61), ...bad]
        // A TEXT (stream, seq 1, sentAt 0) whose text is those bytes.
        const head = [0x10, ...new Array(8).fill(0x11), 0, 0, 0, 0, 0, 0, 0, 1, ...new Array(8).fill(0)]
        const body = Uint8Array.of(...head, text.length >> 8, text.length & 0xff, ...text)
        expect(outcome(() => portable.decodeMessage(body))).toEqual({ code: 'INVALID_UTF8' })
        expect(outcome(() => node.decodeMessage(body))).toEqual({ code: 'INVALID_UTF8' })
      }
    }
  })

  it('splits, reassembles and coalesces frames as the Node path', () => {
    const msgs: node.Message[] = [
      { type: 'PING', nonce: 1 },
      { type: 'TEXT', stream: 'ffeeddccbbaa9988', seq: 9, sentAt: 3, text: 'x'.repeat(20_000) },
      { type: 'GOODBYE', reason: 'bye' },
    ]
    const chunks: Uint8Array[] = []
    const writer = new portable.FrameWriter((c) => chunks.push(c), { schedule: () => {} })
    for (const [i, m] of msgs.entries()) writer.write(m, i)
    writer.writeBody(node.encodeMessage({ type: 'PONG', nonce: 2 }), 4)
    writer.flush()
    const joined = Uint8Array.from(chunks.flatMap((c) => bytesOf(c)))
    const expected = [
      ...msgs.map((m, i) => node.frameMessage(m, { channel: i })),
      node.frameMessage({ type: 'PONG', nonce: 2 }, { channel: 4 }),
    ]
    expect(bytesOf(joined)).toEqual(expected.flatMap((f) => bytesOf(f)))
    const decoder = new portable.FrameDecoder()
    const got: unknown[] = []
    for (let at = 0; at < joined.length; at += 7) {
      for (const body of decoder.push(joined.subarray(at, at + 7))) {
        const { channel: ch, message } = portable.splitChannel(body)
        got.push([ch, portable.decodeMessage(message)])
      }
    }
    expect(got).toEqual([...msgs.map((m, i) => [i, m]), [4, { type: 'PONG', nonce: 2 }]])
    expect(bytesOf(portable.encodeFrame(Uint8Array.of(1, 2, 3)))).toEqual([0, 0, 0, 3, 1, 2, 3])
  })
})
