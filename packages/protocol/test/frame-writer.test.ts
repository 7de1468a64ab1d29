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
} from '../src/index.js'
import { allTypes, expectProtocolError, samples } from './fixtures.js'

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

const decodeAll = (chunks: Uint8Array[]): Message[] => {
  const decoder = new FrameDecoder()
  const messages = chunks.flatMap((chunk) => decoder.push(chunk)).map((body) => decodeMessage(body))
  decoder.end()
  return messages
}

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
    const messages = pings(40) // 9 bytes a frame
    for (const msg of messages) writer.write(msg)
    expect(chunks.length).toBeGreaterThanOrEqual(5)
    for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(64)
    tick()
    expect(decodeAll(chunks)).toEqual(messages)
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
    // 40 frames of 263 bytes: over half the 16 KiB batch buffer, so it is handed over, not copied.
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
    expectProtocolError(() => writer.writeBody(new Uint8Array(0)), ProtocolErrorCode.EMPTY_FRAME)
    expectProtocolError(() => writer.writeBody(new Uint8Array(17)), ProtocolErrorCode.FRAME_TOO_LARGE)
    expect(writer.pendingBytes).toBe(0)
    expect(queued).toHaveLength(0)
  })

  it('refuses a maxBatchBytes that is not a positive integer', () => {
    expect(() => new FrameWriter(() => {}, { maxBatchBytes: 0 })).toThrow(RangeError)
  })
})
