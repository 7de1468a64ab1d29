/**
 * `pnpm --filter @parley/bench bench:micro`: tinybench micro-benchmarks of @parley/protocol's
 * framing (FrameWriter, FrameDecoder) and message codec (encodeMessage, decodeMessage), for a
 * 64-byte and a 65,000-byte TEXT. One task iteration handles a batch of frames, so timer overhead
 * stays out of the per-frame numbers; frames/s and MB/s (10⁶ bytes of encoded frames) per task.
 */
import { decodeMessage, encodeMessage, FrameDecoder, FrameWriter, type Message } from '@parley/protocol'
import { Bench } from 'tinybench'
import { BULK_PAYLOAD } from './plan.js'

interface Case {
  label: string
  message: Message
  /** Frames per task iteration. */
  batch: number
}

const cases: Case[] = [
  {
    label: '64 B TEXT',
    message: {
      type: 'TEXT',
      stream: '0011223344556677',
      seq: 1,
      sentAt: 1_750_000_000_000,
      text: 'x'.repeat(64),
    },
    batch: 1_000,
  },
  {
    label: `${BULK_PAYLOAD.toLocaleString('en-US')} B TEXT`,
    message: {
      type: 'TEXT',
      stream: '0011223344556677',
      seq: 1,
      sentAt: 1_750_000_000_000,
      text: 'x'.repeat(BULK_PAYLOAD),
    },
    batch: 16,
  },
]

async function main(): Promise<void> {
  const time = Number(process.env.MICRO_TIME_MS ?? 500)
  const bench = new Bench({ name: '@parley/protocol', time, warmupTime: Math.min(200, time) })
  /** Bytes of encoded frames per iteration of each task. */
  const bytesPerIteration = new Map<string, number>()
  const framesPerIteration = new Map<string, number>()
  let sink = 0

  for (const { label, message, batch } of cases) {
    const body = encodeMessage(message)
    const frameBytes = body.length + 4
    // A stream of `batch` frames, as one chunk and as 16 KiB chunks (TLS-record-sized reads).
    const stream = Buffer.alloc(frameBytes * batch)
    for (let i = 0; i < batch; i++) {
      stream.writeUInt32BE(body.length, i * frameBytes)
      stream.set(body, i * frameBytes + 4)
    }
    const chunks: Buffer[] = []
    for (let at = 0; at < stream.length; at += 16_384) chunks.push(stream.subarray(at, at + 16_384))

    const add = (name: string, fn: () => void) => {
      const task = `${name} (${label})`
      bench.add(task, fn)
      bytesPerIteration.set(task, frameBytes * batch)
      framesPerIteration.set(task, batch)
    }
    add('encodeMessage', () => {
      for (let i = 0; i < batch; i++) sink += encodeMessage(message).length
    })
    add('decodeMessage', () => {
      for (let i = 0; i < batch; i++) sink += (decodeMessage(body) as { sentAt: number }).sentAt
    })
    add('FrameWriter.write+flush', () => {
      const writer = new FrameWriter((chunk) => {
        sink += chunk.length
      })
      for (let i = 0; i < batch; i++) writer.write(message)
      writer.flush()
    })
    add('FrameDecoder.push, one chunk', () => {
      const decoder = new FrameDecoder()
      sink += decoder.push(stream).length
    })
    add('FrameDecoder.push, 16 KiB chunks', () => {
      const decoder = new FrameDecoder()
      for (const chunk of chunks) sink += decoder.push(chunk).length
    })
  }

  await bench.run()
  const rows = bench.tasks.map((task) => {
    const result = task.result
    const opsPerSec = result.state === 'completed' ? result.throughput.mean : Number.NaN
    const frames = opsPerSec * (framesPerIteration.get(task.name) ?? 0)
    const mb = (opsPerSec * (bytesPerIteration.get(task.name) ?? 0)) / 1e6
    return {
      task: task.name,
      'frames/s': Number.isFinite(frames) ? Math.round(frames).toLocaleString('en-US') : result.state,
      'MB/s': Number.isFinite(mb) ? Math.round(mb).toLocaleString('en-US') : '–',
      samples: result.state === 'completed' ? result.latency.samplesCount : 0,
    }
  })
  console.log(`${bench.name}: Node ${process.version}, ${time} ms per task`)
  console.table(rows)
  if (sink === -1) console.log(sink) // keeps the results alive, so nothing is optimised away
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
