import { describe, expect, it } from 'vitest'
import {
  decodeMessage,
  encodeMessage,
  FrameDecoder,
  FrameWriter,
  type FrameWriterInit,
  frameMessage,
  type Message,
  ProtocolErrorCode,
  splitChannel,
} from '../src/index.js'
import { allTypes, expectProtocolError, hexOf, samples } from './fixtures.js'

/** A writer whose flushes run only when the test calls `tick()`, and whose sink records every chunk. */
function manualWriter(init?: Omit<FrameWriterInit, 'schedule'>) {
  const chunks: Uint8Array[] = []
  const queued: (() => void)[] = []
  const writer = new FrameWriter((chunk) => chunks.push(chunk), {
    ...init,
    schedule: (fn) => queued.push(fn),
  })
  const tick = (): void => {
    for (const fn of queued.splice(0)) fn()
  }
  return { writer, chunks, queued, tick }
}

/** Every frame in `chunks`, in order, as its channel and message. */
const decodeFrames = (chunks: Uint8Array[]): [channel: number, msg: Message][] => {
  const decoder = new FrameDecoder()
  const frames = chunks.flatMap((chunk) => decoder.push(chunk)).map((body) => splitChannel(body))
  decoder.end()
  return frames.map(({ channel, message }) => [channel, decodeMessage(message)])
}

/** The messages in `chunks`, in order, after checking that every one is on the control channel. */
const decodeAll = (chunks: Uint8Array[]): Message[] =>
  decodeFrames(chunks).map(([channel, msg]) => {
    expect(channel).toBe(0)
    return msg
  })

const pings = (n: number, from = 0): Message[] =>
  Array.from({ length: n }, (_, i): Message => ({ type: 'PING', nonce: from + i }))

describe('FrameWriter', () => {
  it('coalesces every write of one tick into one sink call, in order', () => {
    const { writer, chunks, queued, tick } = manualWriter()
    const messages = [...allTypes.map((t) => samples[t]), ...pings(200)]
    for (const msg of messages) writer.write(msg)
    expect(queued).toHaveLength(1) // one flush scheduled, not one per write
    expect(chunks).toHaveLength(0)
    expect(writer.pendingBytes).toBe(messages.reduce((n, m) => n + frameMessage(m).length, 0))
    tick()
    expect(chunks).toHaveLength(1)
    expect(writer.pendingBytes).toBe(0)
    expect(decodeAll(chunks)).toEqual(messages)
  })

  it('sends writes of separate ticks as separate chunks', () => {
    const { writer, chunks, tick } = manualWriter()
    writer.write(samples.PING)
    tick()
    writer.write(samples.PONG)
    writer.write(samples.GOODBYE)
    tick()
    tick() // nothing pending: no empty chunk
    expect(chunks).toHaveLength(2)
    expect(decodeAll(chunks.slice(0, 1))).toEqual([samples.PING])
    expect(decodeAll(chunks.slice(1))).toEqual([samples.PONG, samples.GOODBYE])
  })

  it('schedules with setImmediate by default', async () => {
    const chunks: Uint8Array[] = []
    const writer = new FrameWriter((chunk) => chunks.push(chunk))
    writer.write(samples.PING)
    writer.write(samples.PONG)
    await Promise.resolve()
    expect(chunks).toHaveLength(0) // not a microtask: later microtasks of this tick still coalesce
    await new Promise((resolve) => setImmediate(resolve))
    writer.write(samples.GOODBYE)
    await new Promise((resolve) => setImmediate(resolve))
    expect(chunks).toHaveLength(2)
    expect(decodeAll(chunks)).toEqual([samples.PING, samples.PONG, samples.GOODBYE])
  })

  it('flush() sends now; the scheduled flush then has nothing to send', () => {
    const { writer, chunks, queued, tick } = manualWriter()
    writer.write(samples.PING)
    writer.flush()
    expect(chunks).toHaveLength(1)
    writer.write(samples.PONG) // rides on the flush already scheduled
    expect(queued).toHaveLength(1)
    tick()
    expect(decodeAll(chunks)).toEqual([samples.PING, samples.PONG])
    writer.flush()
    expect(chunks).toHaveLength(2)
  })

  it('flushes synchronously rather than let a batch grow past maxBatchBytes', () => {
    const { writer, chunks, tick } = manualWriter({ maxBatchBytes: 64 })
    const messages = pings(40) // 10 bytes a frame
    for (const msg of messages) writer.write(msg)
    expect(chunks.length).toBeGreaterThanOrEqual(5)
    for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(64)
    tick()
    expect(decodeAll(chunks)).toEqual(messages)
  })

  it('grows a batch past its first 16 KiB (to 128 KiB) keeping every byte written before', () => {
    const { writer, chunks, tick } = manualWriter()
    // 4 KiB frames (under the 8 KiB that goes alone) fill the batch through several doublings.
    const messages = Array.from(
      { length: 25 },
      (_, i): Message => ({
        type: 'TEXT',
        stream: '0011223344556677',
        seq: i + 1,
        sentAt: i,
        text: `${i}`.padEnd(4000, '.'),
      }),
    )
    for (const msg of messages) writer.write(msg)
    tick()
    expect(chunks).toHaveLength(1)
    expect(hexOf(chunks[0]!)).toBe(messages.map((m) => hexOf(frameMessage(m))).join(''))
  })

  it('sends a frame larger than maxBatchBytes alone and at once', () => {
    const { writer, chunks } = manualWriter({ maxBatchBytes: 64 })
    const big: Message = { type: 'GOODBYE', reason: 'x'.repeat(200) }
    writer.write(samples.PING)
    writer.write(big)
    expect(chunks).toHaveLength(2)
    expect(decodeAll([chunks[0]!])).toEqual([samples.PING])
    expect(decodeAll([chunks[1]!])).toEqual([big])
  })

  it('sends a frame of 8 KiB or more on its own, at once, after what was pending', () => {
    const { writer, chunks, tick } = manualWriter()
    const big: Message = { type: 'TEXT', stream: '1'.repeat(16), seq: 1, sentAt: 0, text: 'z'.repeat(20_000) }
    writer.write(samples.PING)
    writer.write(big)
    // The pending PING leaves first, then the frame as a chunk of exactly its own bytes.
    expect(chunks).toHaveLength(2)
    expect(chunks[1]!.byteLength).toBe(frameMessage(big).byteLength)
    writer.writeBody(encodeMessage(big))
    writer.write(samples.PONG)
    tick()
    expect(chunks).toHaveLength(4)
    expect(decodeAll(chunks)).toEqual([samples.PING, big, big, samples.PONG])
  })

  it('lends its batch buffer to a sink that is done with it on return, and reuses it', () => {
    const seen: Uint8Array[] = []
    const memory = new Set<ArrayBufferLike>()
    const queued: (() => void)[] = []
    const writer = new FrameWriter(
      (chunk) => {
        seen.push(Buffer.from(chunk)) // a lending sink copies (or encrypts) before it returns
        memory.add(chunk.buffer)
      },
      { lend: true, schedule: (fn) => queued.push(fn) },
    )
    const batches = [pings(3), pings(200, 10), pings(5, 300)]
    for (const batch of batches) {
      for (const msg of batch) writer.write(msg)
      for (const fn of queued.splice(0)) fn()
    }
    expect(seen.map((chunk) => decodeAll([chunk]))).toEqual(batches)
    expect(memory.size).toBe(1)
  })

  it('takes the memory of a frame sent on its own from `allocate`, and only of such frames', () => {
    const given: Buffer[] = []
    const allocate = (size: number): Buffer => {
      const memory = Buffer.alloc(size + 100, 0xee).subarray(0, size) // larger memory, a view of it
      given.push(memory)
      return memory
    }
    const { writer, chunks, tick } = manualWriter({ allocate })
    const big: Message = { type: 'TEXT', stream: '1'.repeat(16), seq: 1, sentAt: 0, text: 'é'.repeat(9_000) }
    writer.write(samples.PING)
    writer.write(big)
    writer.writeBody(encodeMessage(big))
    writer.write(samples.PONG)
    tick()
    expect(given).toHaveLength(2)
    expect(chunks[1]).toBe(given[0]) // the very object, so its owner can recognise it
    expect(chunks[2]).toBe(given[1])
    expect(decodeAll(chunks)).toEqual([samples.PING, big, big, samples.PONG])
  })

  describe('backpressure', () => {
    const big = (seq: number): Message => ({
      type: 'TEXT',
      stream: '1'.repeat(16),
      seq,
      sentAt: 0,
      text: 'é'.repeat(5_000),
    })

    /** A writer whose sink refuses more while `blocked` is set (it still takes the chunk, as a socket does). */
    function blockingWriter(backpressure = true) {
      const chunks: Uint8Array[] = []
      const queued: (() => void)[] = []
      const state = { blocked: false }
      const writer = new FrameWriter(
        (chunk) => {
          chunks.push(chunk)
          return !state.blocked
        },
        { backpressure, schedule: (fn) => queued.push(fn) },
      )
      const tick = (): void => {
        for (const fn of queued.splice(0)) fn()
      }
      return { writer, chunks, state, tick }
    }

    it('holds what is written after the sink refused, and resume() sends it in order', () => {
      const { writer, chunks, state, tick } = blockingWriter()
      state.blocked = true
      writer.write(big(1)) // taken, but the sink says it is full
      writer.write(samples.PING)
      writer.write(big(2))
      writer.writeBody(encodeMessage(samples.PONG))
      tick()
      expect(chunks).toHaveLength(1)
      expect(writer.heldFrames).toBe(3)
      // Still full after the next large frame: the rest waits for the next resume().
      writer.resume()
      expect(chunks).toHaveLength(3) // PING (flushed before the frame), big(2)
      expect(writer.heldFrames).toBe(1)
      state.blocked = false
      writer.resume()
      tick()
      expect(writer.heldFrames).toBe(0)
      expect(decodeAll(chunks)).toEqual([big(1), samples.PING, big(2), samples.PONG])
    })

    it('flush() sends everything held, blocked or not', () => {
      const { writer, chunks, state } = blockingWriter()
      state.blocked = true
      writer.write(big(1))
      writer.write(big(2))
      writer.write(samples.PING)
      writer.flush()
      expect(writer.heldFrames).toBe(0)
      expect(decodeAll(chunks)).toEqual([big(1), big(2), samples.PING])
    })

    it('flushPending() sends the pending batch now, but what is held stays held', () => {
      const { writer, chunks, state, tick } = blockingWriter()
      writer.write(samples.PING)
      writer.flushPending()
      expect(decodeAll(chunks)).toEqual([samples.PING])
      state.blocked = true
      writer.write(big(1)) // taken, but the sink says it is full
      writer.write(samples.PONG)
      writer.flushPending()
      expect(chunks).toHaveLength(2)
      expect(writer.heldFrames).toBe(1)
      tick()
      expect(chunks).toHaveLength(2)
      state.blocked = false
      writer.resume()
      tick()
      expect(decodeAll(chunks)).toEqual([samples.PING, big(1), samples.PONG])
    })

    it('checks a message when it is written, not when it is released', () => {
      const { writer, state } = blockingWriter()
      state.blocked = true
      writer.write(big(1))
      expectProtocolError(() => writer.write({ type: 'PING', nonce: -1 }), ProtocolErrorCode.INVALID_FIELD)
      expect(writer.heldFrames).toBe(0)
    })

    it('ignores the sink’s answer unless asked to honour it', () => {
      const { writer, chunks, state } = blockingWriter(false)
      state.blocked = true
      writer.write(big(1))
      writer.write(big(2))
      expect(writer.heldFrames).toBe(0)
      expect(chunks).toHaveLength(2)
    })
  })

  it('hands over chunks the sink may keep: later batches never overwrite them', () => {
    // Small batches reach the sink as a copy, large ones as the batch buffer itself: check both.
    const { writer, chunks, tick } = manualWriter()
    const small = pings(3)
    // 40 frames of 264 bytes: over half the 16 KiB batch buffer, so it is handed over, not copied.
    const large = Array.from(
      { length: 40 },
      (_, i): Message => ({ type: 'GOODBYE', reason: `${i % 10}`.repeat(256) }),
    )
    const batches = [small, large, pings(30, 100), large, small]
    for (const batch of batches) {
      for (const msg of batch) writer.write(msg)
      tick()
    }
    const bigText: Message = {
      type: 'TEXT',
      stream: '0'.repeat(16),
      seq: 1,
      sentAt: 0,
      text: 'y'.repeat(40_000),
    }
    writer.write(bigText)
    tick()
    expect(chunks).toHaveLength(batches.length + 1)
    batches.forEach((batch, i) => {
      expect(decodeAll([chunks[i]!])).toEqual(batch)
    })
    expect(decodeAll([chunks[batches.length]!])).toEqual([bigText])
  })

  it('writeBody frames encoded bodies, interleaved with write in order', () => {
    const { writer, chunks, tick } = manualWriter()
    writer.writeBody(encodeMessage(samples.TEXT))
    writer.write(samples.ACK)
    writer.writeBody(encodeMessage(samples.PEERS_REQUEST))
    tick()
    expect(decodeAll(chunks)).toEqual([samples.TEXT, samples.ACK, samples.PEERS_REQUEST])
  })

  it('rejects an invalid message or body and queues nothing', () => {
    const { writer, queued } = manualWriter({ maxFrameSize: 16 })
    expectProtocolError(() => writer.write({ type: 'PING', nonce: -1 }), ProtocolErrorCode.INVALID_FIELD)
    expectProtocolError(() => writer.write(samples.HELLO), ProtocolErrorCode.FRAME_TOO_LARGE)
    // 16 bytes of message make a 17-byte frame body with the channel byte.
    expectProtocolError(() => writer.writeBody(new Uint8Array(16), 1), ProtocolErrorCode.FRAME_TOO_LARGE)
    expect(writer.pendingBytes).toBe(0)
    expect(queued).toHaveLength(0)
  })

  describe('channels', () => {
    const big = (seq: number, size = 20_000): Message => ({
      type: 'TEXT',
      stream: '2'.repeat(16),
      seq,
      sentAt: 0,
      text: 'b'.repeat(size),
    })

    it('puts the channel byte between the length and the message, batched or sent alone', () => {
      const { writer, chunks, tick } = manualWriter()
      writer.write(samples.PING, 5)
      writer.writeBody(encodeMessage(samples.PONG), 6)
      writer.write(big(1), 7) // 8 KiB or more: a chunk of its own
      writer.writeBody(encodeMessage(big(2)), 8)
      writer.write(samples.GOODBYE) // no channel: the control channel
      writer.writeBody(encodeMessage(samples.PEERS_REQUEST))
      tick()
      expect(chunks).toHaveLength(4)
      expect(hexOf(chunks[0]!)).toBe(
        `00000006 05 ${hexOf(encodeMessage(samples.PING))} 00000006 06 ${hexOf(encodeMessage(samples.PONG))}`.replace(
          / /g,
          '',
        ),
      )
      expect(hexOf(chunks[1]!.subarray(0, 5))).toBe(
        hexOf(frameMessage(big(1), { channel: 7 }).subarray(0, 5)),
      )
      expect(hexOf(chunks[2]!)).toBe(hexOf(frameMessage(big(2), { channel: 8 })))
      expect(decodeFrames(chunks)).toEqual([
        [5, samples.PING],
        [6, samples.PONG],
        [7, big(1)],
        [8, big(2)],
        [0, samples.GOODBYE],
        [0, samples.PEERS_REQUEST],
      ])
    })

    it('counts what it holds while blocked, in all and per channel', () => {
      const chunks: Uint8Array[] = []
      let flowing = false
      const writer = new FrameWriter(
        (chunk) => {
          chunks.push(chunk)
          return flowing
        },
        { backpressure: true, schedule: () => {} },
      )
      expect(writer.blocked).toBe(false)
      writer.write(big(1), 3) // taken, but the sink is full
      expect(writer.blocked).toBe(true)
      expect(writer.heldBytes).toBe(0)

      const frameSize = (msg: Message): number => frameMessage(msg).length
      writer.write(samples.PING, 1)
      writer.writeBody(encodeMessage(samples.PONG), 2)
      writer.write(big(2), 3)
      writer.write(big(3, 100), 3)
      writer.write({ type: 'PING', nonce: 9 })
      expect(writer.heldFrames).toBe(5)
      expect(writer.heldBytesOf(0)).toBe(frameSize({ type: 'PING', nonce: 9 }))
      expect(writer.heldBytesOf(1)).toBe(10)
      expect(writer.heldBytesOf(2)).toBe(10)
      expect(writer.heldBytesOf(3)).toBe(frameSize(big(2)) + frameSize(big(3, 100)))
      expect(writer.heldBytesOf(4)).toBe(0)
      expect(writer.heldBytes).toBe([0, 1, 2, 3].reduce((n, c) => n + writer.heldBytesOf(c), 0))
      expect(writer.pendingBytes).toBe(0) // held frames are not framed yet

      // One turn of the rotation (channels 1, 2, 3: the big frame blocks again), then 0 and 3 are left.
      writer.resume()
      expect(writer.blocked).toBe(true)
      expect(writer.heldBytesOf(1)).toBe(0)
      expect(writer.heldBytesOf(2)).toBe(0)
      expect(writer.heldBytesOf(3)).toBe(frameSize(big(3, 100)))
      expect(writer.heldBytes).toBe(frameSize(big(3, 100)) + frameSize({ type: 'PING', nonce: 9 }))
      expect(writer.heldFrames).toBe(2)

      flowing = true
      writer.resume()
      writer.flush()
      expect(writer.blocked).toBe(false)
      expect(writer.heldFrames).toBe(0)
      expect(writer.heldBytes).toBe(0)
      for (const channel of [0, 1, 2, 3]) expect(writer.heldBytesOf(channel)).toBe(0)
      expect(decodeFrames(chunks).map(([channel, msg]) => [channel, msg.type])).toEqual([
        [3, 'TEXT'],
        [1, 'PING'],
        [2, 'PONG'],
        [3, 'TEXT'],
        [0, 'PING'], // the rotation goes on where it stopped: channel 0's turn comes before 3's
        [3, 'TEXT'],
      ])
    })

    it('sends GOODBYE after everything written before it, on every channel, blocked or not', () => {
      const chunks: Uint8Array[] = []
      const writer = new FrameWriter(
        (chunk) => {
          chunks.push(chunk)
          return false
        },
        { backpressure: true, schedule: () => {} },
      )
      writer.write(big(1), 1)
      for (let i = 2; i < 6; i++) writer.write(big(i), 1 + (i % 2))
      writer.write(samples.GOODBYE)
      writer.flush()
      const order = decodeFrames(chunks).map(([channel, msg]) => [channel, msg.type])
      expect(order).toHaveLength(6)
      expect(order.at(-1)).toEqual([0, 'GOODBYE'])
    })

    it('lets a small frame overtake a bulk channel’s backlog: it leaves within the first two frames', () => {
      const chunks: Uint8Array[] = []
      const queued: (() => void)[] = []
      // A sink that takes each chunk and then reports itself full, until the next resume().
      const writer = new FrameWriter(
        (chunk) => {
          chunks.push(chunk)
          return false
        },
        { backpressure: true, schedule: (fn) => queued.push(fn) },
      )
      writer.write(big(100), 3)
      expect(writer.blocked).toBe(true)
      const sentBefore = chunks.length
      for (let i = 1; i <= 10; i++) writer.write(big(i), 3)
      writer.write(samples.ACK, 1)
      expect(writer.heldFrames).toBe(11)

      for (let round = 0; round < 30 && writer.heldFrames > 0; round++) {
        writer.resume()
        for (const fn of queued.splice(0)) fn()
      }
      expect(writer.heldFrames).toBe(0)
      const released = decodeFrames(chunks.slice(sentBefore))
      expect(released).toHaveLength(11)
      const at = released.findIndex(([channel]) => channel === 1)
      expect(at).toBeGreaterThanOrEqual(0)
      expect(at).toBeLessThanOrEqual(1)
      expect(released[at]).toEqual([1, samples.ACK])
      // The bulk channel's own frames keep their order.
      expect(released.filter(([channel]) => channel === 3).map(([, msg]) => msg)).toEqual(
        Array.from({ length: 10 }, (_, i) => big(i + 1)),
      )
    })

    it('releases held frames one channel at a time, in turn, each channel in its own order', () => {
      const { writer, chunks, state } = (() => {
        const chunks: Uint8Array[] = []
        const state = { blocked: true }
        const writer = new FrameWriter(
          (chunk) => {
            chunks.push(chunk)
            return !state.blocked
          },
          { backpressure: true, schedule: () => {} },
        )
        return { writer, chunks, state }
      })()
      writer.write(big(100), 9)
      for (let i = 0; i < 3; i++) {
        writer.write({ type: 'PING', nonce: i }, 2)
        writer.write({ type: 'PING', nonce: 10 + i }, 5)
      }
      writer.write({ type: 'PING', nonce: 20 }, 1)
      state.blocked = false
      writer.flush()
      expect(decodeFrames(chunks.slice(1)).map(([c, msg]) => [c, (msg as { nonce: number }).nonce])).toEqual([
        [2, 0],
        [5, 10],
        [1, 20],
        [2, 1],
        [5, 11],
        [2, 2],
        [5, 12],
      ])
    })
  })

  it('writeBody refuses an empty message body, which no receiver would accept', () => {
    const { writer, queued } = manualWriter()
    expectProtocolError(() => writer.writeBody(new Uint8Array(0), 1), ProtocolErrorCode.EMPTY_FRAME)
    expect(writer.pendingBytes).toBe(0)
    expect(queued).toHaveLength(0)
  })

  it('write and writeBody refuse a channel that does not fit its byte', () => {
    const { writer } = manualWriter()
    for (const channel of [-1, 256, 1.5]) {
      expect(() => writer.write(samples.PING, channel)).toThrow(RangeError)
      expect(() => writer.writeBody(encodeMessage(samples.PING), channel)).toThrow(RangeError)
    }
    expect(writer.pendingBytes).toBe(0)
  })

  it('refuses a maxBatchBytes that is not a positive integer', () => {
    expect(() => new FrameWriter(() => {}, { maxBatchBytes: 0 })).toThrow(RangeError)
  })
})
