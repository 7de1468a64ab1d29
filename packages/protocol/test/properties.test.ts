import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  decodeMessage,
  encodedLength,
  encodeMessage,
  FrameDecoder,
  FrameWriter,
  frameMessage,
  type Message,
  MessageType,
  ProtocolError,
  splitChannel,
} from '../src/index.js'
import { anyMessage, channel, messageByType, u8 } from './arbitraries.js'
import { hexOf } from './fixtures.js'

/** The channel and message of every frame body. */
const framesOf = (bodies: Uint8Array[]): [number, Message][] =>
  bodies.map((b) => {
    const { channel, message } = splitChannel(b)
    return [channel, decodeMessage(message)]
  })

/** decodeMessage either returns a message that re-encodes to the same bytes, or throws ProtocolError. */
function decodesCanonicallyOrRejects(body: Uint8Array): void {
  let msg: Message
  try {
    msg = decodeMessage(body)
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError)
    return
  }
  // One encoding per message: whatever decodes re-encodes to exactly the same bytes.
  expect(hexOf(encodeMessage(msg))).toBe(hexOf(body))
}

// ---------------------------------------------------------------------------------------------

describe('codec properties', () => {
  it.each(Object.keys(messageByType) as Message['type'][])(
    'decode(encode(x)) equals x for any %s',
    (type) => {
      const arb = messageByType[type] as fc.Arbitrary<Message>
      fc.assert(
        fc.property(arb, u8, (msg, channel) => {
          const body = encodeMessage(msg)
          expect(body.length).toBe(encodedLength(msg))
          expect(decodeMessage(body)).toEqual(msg)
          const frame = frameMessage(msg, { maxFrameSize: 0xffff_ffff, channel })
          expect(frame[4]).toBe(channel)
          expect(hexOf(frame.subarray(5))).toBe(hexOf(body))
        }),
        { numRuns: 200 },
      )
    },
  )

  it('random bytes either decode canonically or throw ProtocolError', () => {
    const knownType = fc.constantFrom(...Object.values(MessageType))
    const typed = fc
      .tuple(knownType, fc.uint8Array({ maxLength: 200 }))
      .map(([type, rest]) => Uint8Array.of(type, ...rest))
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), typed), decodesCanonicallyOrRejects), {
      numRuns: 5000,
    })
  })

  it('mutated valid encodings (flip, truncate, append, splice) either decode or throw ProtocolError', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip'), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ kind: fc.constant('truncate'), at: fc.nat() }),
      fc.record({ kind: fc.constant('append'), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
      fc.record({
        kind: fc.constant('insert'),
        at: fc.nat(),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }),
      }),
    )
    fc.assert(
      fc.property(anyMessage, fc.array(mutation, { minLength: 1, maxLength: 3 }), (msg, mutations) => {
        let body = encodeMessage(msg)
        for (const m of mutations) {
          if (m.kind === 'flip' && body.length > 0) {
            body = Uint8Array.from(body)
            body[m.at % body.length]! ^= m.xor
          } else if (m.kind === 'truncate') {
            body = body.subarray(0, m.at % (body.length + 1))
          } else if (m.kind === 'append') {
            body = Uint8Array.from([...body, ...m.bytes])
          } else if (m.kind === 'insert') {
            const at = m.at % (body.length + 1)
            body = Uint8Array.from([...body.subarray(0, at), ...m.bytes, ...body.subarray(at)])
          }
        }
        decodesCanonicallyOrRejects(body)
      }),
      { numRuns: 3000 },
    )
  })
})

describe('framing properties', () => {
  it('any chunking of a frame stream yields the same bodies', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(channel, anyMessage), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (frames, cuts) => {
          const stream = Buffer.concat(
            frames.map(([channel, m]) => frameMessage(m, { maxFrameSize: 0xffff_ffff, channel })),
          )
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b)
          const decoder = new FrameDecoder({ maxFrameSize: 0xffff_ffff })
          const bodies: Uint8Array[] = []
          let from = 0
          for (const to of [...points, stream.length]) {
            bodies.push(...decoder.push(stream.subarray(from, to)))
            from = to
          }
          decoder.end()
          expect(framesOf(bodies)).toEqual(frames)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('random chunks given to FrameDecoder.push return frames or throw ProtocolError, and failure sticks', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 12 }),
        (maxFrameSize, chunks) => {
          const decoder = new FrameDecoder({ maxFrameSize })
          for (const chunk of chunks) {
            try {
              for (const body of decoder.push(chunk)) {
                expect(body.length).toBeGreaterThan(0)
                expect(body.length).toBeLessThanOrEqual(maxFrameSize)
              }
            } catch (err) {
              expect(err).toBeInstanceOf(ProtocolError)
              expect(decoder.error).toBe(err)
            }
            if (decoder.error) expect(() => decoder.push(Uint8Array.of(0))).toThrow(decoder.error)
            expect(decoder.buffered).toBeLessThanOrEqual(maxFrameSize + 3)
            expect(decoder.heldBytes).toBeLessThanOrEqual(maxFrameSize)
          }
        },
      ),
      { numRuns: 2000 },
    )
  })

  it('FrameDecoder.pushMessages yields what push and splitChannel do, failing where they fail', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        // Bodies of 0 to 9 bytes (each with its length prefix), then any bytes, cut anywhere.
        fc.array(fc.uint8Array({ maxLength: 9 }), { maxLength: 8 }),
        fc.uint8Array({ maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (maxFrameSize, bodies, tail, cuts) => {
          const stream = Buffer.concat([
            ...bodies.flatMap((b) => [Buffer.from([0, 0, 0, b.length]), b]),
            tail,
          ])
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((x, y) => x - y)
          const chunks = [...points, stream.length].map((to, i, all) =>
            stream.subarray(i ? all[i - 1] : 0, to),
          )
          const whole = new FrameDecoder({ maxFrameSize })
          const want: [number, string][] = []
          let wantError: string | undefined
          for (const chunk of chunks) {
            try {
              for (const body of whole.push(chunk)) {
                const { channel, message } = splitChannel(body)
                want.push([channel, hexOf(message)])
              }
            } catch (err) {
              wantError = (err as ProtocolError).code
              break
            }
            if (whole.error) {
              wantError = whole.error.code
              break
            }
          }
          const split = new FrameDecoder({ maxFrameSize })
          const got: [number, string][] = []
          let gotError: string | undefined
          for (const chunk of chunks) {
            const channels: number[] = []
            try {
              const messages = split.pushMessages(chunk, channels)
              expect(channels).toHaveLength(messages.length)
              for (const [i, m] of messages.entries()) got.push([channels[i]!, hexOf(m)])
            } catch (err) {
              gotError = (err as ProtocolError).code
              break
            }
            if (split.error) {
              gotError = split.error.code
              break
            }
          }
          expect(got).toEqual(want)
          // pushMessages refuses a 1-byte frame at its prefix; push has to wait for its byte first.
          if (gotError === 'EMPTY_FRAME' && wantError === undefined) {
            expect(() => whole.end()).toThrow('stream ended inside a 1-byte frame')
          } else expect(gotError).toBe(wantError)
        },
      ),
      { numRuns: 2000 },
    )
  })

  it('FrameWriter output, however batched, decodes to the messages written, in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(channel, anyMessage, fc.boolean()), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 1, max: 4096 }),
        (writes, maxBatchBytes) => {
          const chunks: Uint8Array[] = []
          const queued: (() => void)[] = []
          const writer = new FrameWriter((chunk) => chunks.push(chunk), {
            maxBatchBytes,
            maxFrameSize: 0xffff_ffff,
            schedule: (fn) => queued.push(fn),
          })
          for (const [channel, msg, tickAfter] of writes) {
            writer.write(msg, channel)
            if (tickAfter) for (const fn of queued.splice(0)) fn()
          }
          writer.flush()
          const decoder = new FrameDecoder({ maxFrameSize: 0xffff_ffff })
          const decoded = framesOf(chunks.flatMap((c) => decoder.push(c)))
          expect(decoded).toEqual(writes.map(([channel, msg]) => [channel, msg]))
        },
      ),
      { numRuns: 300 },
    )
  })

  it('FrameWriter under backpressure delivers every frame once, each channel in order, and counts what it holds', () => {
    const step = fc.oneof(
      fc.record({ op: fc.constant('write' as const), channel, msg: anyMessage, body: fc.boolean() }),
      fc.record({ op: fc.constant('full' as const), full: fc.boolean() }),
      fc.record({ op: fc.constant('resume' as const) }),
      fc.record({ op: fc.constant('tick' as const) }),
    )
    fc.assert(
      fc.property(
        fc.array(step, { minLength: 1, maxLength: 40 }),
        fc.constantFrom(1, 64, 4096),
        (steps, maxBatchBytes) => {
          const chunks: Uint8Array[] = []
          const queued: (() => void)[] = []
          let full = false
          const writer = new FrameWriter(
            (chunk) => {
              chunks.push(chunk)
              return !full
            },
            {
              backpressure: true,
              maxBatchBytes,
              maxFrameSize: 0xffff_ffff,
              schedule: (fn) => queued.push(fn),
            },
          )
          const written: [number, Message][] = []
          const decoder = new FrameDecoder({ maxFrameSize: 0xffff_ffff })
          const sent: [number, Message][] = []
          let seen = 0
          for (const s of steps) {
            if (s.op === 'write') {
              if (s.body) writer.writeBody(encodeMessage(s.msg), s.channel)
              else writer.write(s.msg, s.channel)
              written.push([s.channel, s.msg])
            } else if (s.op === 'full') full = s.full
            else if (s.op === 'resume') writer.resume()
            else for (const fn of queued.splice(0)) fn()
            for (; seen < chunks.length; seen++) sent.push(...framesOf(decoder.push(chunks[seen]!)))
            if (writer.pendingBytes > 0) continue
            // Nothing is half-way: per channel, what the sink got is a prefix of what was written,
            // and the writer holds exactly the rest, byte for byte.
            let held = 0
            for (const c of new Set(written.map(([c]) => c))) {
              const wrote = written.filter(([channel]) => channel === c)
              const got = sent.filter(([channel]) => channel === c)
              expect(got).toEqual(wrote.slice(0, got.length))
              const rest = wrote
                .slice(got.length)
                .reduce((n, [, msg]) => n + frameMessage(msg, { maxFrameSize: 0xffff_ffff }).length, 0)
              expect(writer.heldBytesOf(c)).toBe(rest)
              held += rest
            }
            expect(writer.heldBytes).toBe(held)
            expect(writer.heldFrames).toBe(written.length - sent.length)
          }
          writer.flush()
          for (; seen < chunks.length; seen++) sent.push(...framesOf(decoder.push(chunks[seen]!)))
          decoder.end()
          expect(writer.heldBytes).toBe(0)
          expect(sent).toHaveLength(written.length)
          for (const c of new Set(written.map(([c]) => c))) {
            const onC = ([channel]: [number, Message]): boolean => channel === c
            expect(sent.filter(onC)).toEqual(written.filter(onC))
          }
        },
      ),
      { numRuns: 300 },
    )
  })

  it('FrameDecoder assembles a body split anywhere, holding at most 2× what arrived + 16 KiB', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 80_000 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.nat(),
        (length, cuts, seed) => {
          const body = Buffer.allocUnsafe(length)
          for (let i = 0; i < length; i++) body[i] = (seed + i * 31) & 0xff
          const frame = Buffer.concat([
            Buffer.from([length >>> 24, length >>> 16, length >>> 8, length]),
            body,
          ])
          const points = [...new Set(cuts.map((c) => c % (frame.length + 1)))].sort((a, b) => a - b)
          const decoder = new FrameDecoder({ maxFrameSize: 0xffff_ffff })
          const bodies: Uint8Array[] = []
          let from = 0
          for (const to of [...points, frame.length]) {
            // A fresh copy per chunk, as a socket would hand over.
            bodies.push(...decoder.push(new Uint8Array(frame.subarray(from, to))))
            from = to
            const received = Math.max(0, to - 4)
            if (received < length) {
              expect(decoder.heldBytes).toBeLessThanOrEqual(2 * received + 16 * 1024)
              expect(decoder.buffered).toBe(to < 4 ? to : received)
            }
          }
          decoder.end()
          expect(bodies).toHaveLength(1)
          expect(Buffer.compare(bodies[0]!, body)).toBe(0)
          expect(decoder.heldBytes).toBe(0)
        },
      ),
      { numRuns: 300 },
    )
  })
})
