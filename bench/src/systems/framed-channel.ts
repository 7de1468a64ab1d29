import type { Socket } from 'node:net'
import { type FrameOutput, FrameReader, FrameSink, type FrameSinkInit } from '../framing.js'
import type { Channel, Payload } from './types.js'

/** A byte stream as {@link FramedChannel} needs it. */
export interface ByteEndpoint extends FrameOutput {
  /** Resolves when everything written so far has been handed to the kernel (or the muxer). */
  settled(): Promise<void>
  close(): Promise<void>
}

/**
 * A {@link Channel} over a byte stream with the bench's length-prefix framing. The adapter feeds it
 * with `data`, `drain` and `fail`.
 */
export class FramedChannel implements Channel {
  onMessage: ((msg: Payload) => void) | undefined
  readonly #endpoint: ByteEndpoint
  readonly #sink: FrameSink
  readonly #reader: FrameReader
  #failure: Error | undefined
  #waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = []

  constructor(endpoint: ByteEndpoint, sink: FrameSinkInit = {}) {
    this.#endpoint = endpoint
    this.#sink = new FrameSink(endpoint, sink)
    this.#reader = new FrameReader((payload) => this.onMessage?.(payload))
  }

  data(chunk: Uint8Array): void {
    try {
      this.#reader.push(chunk)
    } catch (err) {
      this.fail(err as Error)
    }
  }

  drain(): void {
    this.#sink.onDrain()
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w.resolve()
  }

  fail(err: Error): void {
    this.#failure ??= err
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w.reject(err)
  }

  send(msg: Payload): boolean {
    if (this.#failure) throw this.#failure
    return this.#sink.write(msg as Uint8Array)
  }

  ready(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure)
    if (!this.#sink.blocked) return Promise.resolve()
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }))
  }

  settled(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure)
    this.#sink.flush()
    return this.#endpoint.settled()
  }

  close(): Promise<void> {
    this.#sink.flush()
    return this.#endpoint.close()
  }
}

/**
 * A {@link FramedChannel} over a connected `net.Socket` or `tls.TLSSocket`; `sink.coalesce: false`
 * writes each frame on its own, as a naive application does.
 */
export function socketChannel(socket: Socket, sink: FrameSinkInit = {}): FramedChannel {
  socket.setNoDelay(true)
  const channel = new FramedChannel(
    {
      write: (chunk) => socket.write(chunk),
      writev: (chunks) => {
        // cork/uncork turns the header and payload into one writev, the payload not copied.
        socket.cork()
        let ok = true
        for (const chunk of chunks) ok = socket.write(chunk)
        socket.uncork()
        return ok
      },
      settled: () =>
        new Promise<void>((resolve, reject) => {
          // The callback of an empty write runs once everything queued before it is written.
          socket.write(Buffer.alloc(0), (err) => (err ? reject(err) : resolve()))
        }),
      close: () =>
        new Promise<void>((resolve) => {
          if (socket.destroyed) return resolve()
          socket.once('close', () => resolve())
          socket.end()
          // Bounded: a peer that never answers our FIN is cut off.
          setTimeout(() => socket.destroy(), 2_000).unref()
        }),
    },
    sink,
  )
  socket.on('data', (chunk: Buffer) => channel.data(chunk))
  socket.on('drain', () => channel.drain())
  socket.on('error', (err) => channel.fail(err))
  socket.on('close', () => channel.fail(new Error('the connection closed')))
  // The remote finished: finish ours too (allowHalfOpen is off for these sockets anyway).
  socket.on('end', () => socket.end())
  return channel
}
