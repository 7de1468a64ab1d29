import { describe, expect, it } from 'vitest'
import { FrameReader, FrameSink, PREFIX_BYTES } from '../src/framing.js'

/** Collects what a sink writes: each write (and gathered write) as one chunk. */
function collector() {
  const writes: Buffer[] = []
  const out = {
    write: (chunk: Uint8Array) => {
      writes.push(Buffer.from(chunk))
      return true
    },
    writev: (chunks: Uint8Array[]) => {
      writes.push(Buffer.concat(chunks))
      return true
    },
  }
  return { writes, out }
}

function payloads(): Buffer[] {
  // Small, batch-filling and direct (large) frames, mixed.
  return [1, 64, 70_000, 3, 16_383, 16_384, 20, 65_000, 5].map((n, i) => Buffer.alloc(n, 97 + i))
}

function decode(stream: Buffer, split: number): Buffer[] {
  const out: Buffer[] = []
  const reader = new FrameReader((p) => out.push(Buffer.from(p)))
  for (let at = 0; at < stream.length; at += split) reader.push(stream.subarray(at, at + split))
  return out
}

describe('FrameSink + FrameReader', () => {
  it('round-trip mixed sizes, read whole, in 1000-byte pieces and one byte at a time', async () => {
    const { writes, out } = collector()
    const sink = new FrameSink(out)
    const sent = payloads()
    for (const p of sent) sink.write(p)
    await Promise.resolve() // the batch leaves in a microtask
    const stream = Buffer.concat(writes)
    for (const split of [stream.length, 1000, 1]) expect(decode(stream, split)).toEqual(sent)
  })

  it('coalesces the small frames of one tick into one write', async () => {
    const { writes, out } = collector()
    const sink = new FrameSink(out)
    for (let i = 0; i < 100; i++) sink.write(Buffer.alloc(64, i))
    expect(writes).toHaveLength(0)
    await Promise.resolve()
    expect(writes).toHaveLength(1)
    expect(writes[0]!.length).toBe(100 * (64 + PREFIX_BYTES))
  })

  it('sends a large frame as one gathered write, without copying the payload into the batch', () => {
    const chunks: Uint8Array[][] = []
    const payload = Buffer.alloc(65_000, 1)
    const sink = new FrameSink({ write: () => true, writev: (c) => chunks.push(c) > 0 })
    sink.write(payload)
    expect(chunks).toHaveLength(1)
    expect(chunks[0]![1]).toBe(payload)
  })

  it('writes each frame on its own when coalescing is off', () => {
    const { writes, out } = collector()
    const sink = new FrameSink(out, { coalesce: false })
    sink.write(Buffer.alloc(10))
    sink.write(Buffer.alloc(70_000))
    expect(writes.map((w) => w.length)).toEqual([14, 70_004])
  })

  it('reports backpressure until the output drains', () => {
    const sink = new FrameSink({ write: () => false }, { maxBatchBytes: 100 })
    expect(sink.write(Buffer.alloc(200))).toBe(false)
    expect(sink.blocked).toBe(true)
    sink.onDrain()
    expect(sink.blocked).toBe(false)
  })

  it('rejects a zero or oversized length prefix', () => {
    const reader = new FrameReader(() => {}, 1000)
    expect(() => reader.push(Buffer.from([0, 0, 0, 0]))).toThrow(RangeError)
    expect(() => new FrameReader(() => {}, 1000).push(Buffer.from([0, 0, 4, 0]))).toThrow(RangeError)
  })
})
