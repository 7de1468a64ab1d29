import { EventEmitter } from 'node:events'
import {
  type AbortOptions,
  type Connection,
  type ConnectionEvents,
  type ConnectionStatus,
  TransportError,
} from '@parley/core'
import type { NoiseSecretStream } from 'hyperdht'
import { type DhtPath, registerSession } from './session.js'

type Held = { kind: 'data'; chunk: Uint8Array } | { kind: 'end' } | { kind: 'drain' }

/**
 * A {@link Connection} over one HyperDHT stream (a NoiseSecretStream over UDX): already encrypted and
 * authenticated by HyperDHT's Noise handshake.
 *
 * Events are held until the tick after the connection is handed out ("no event in the tick a
 * connection is handed out"), and data is held while paused; the stream itself pushes back on the
 * sender once its read buffer is full.
 */
export class DhtConnection extends EventEmitter<ConnectionEvents> implements Connection {
  readonly localAddress: string
  readonly remoteAddress: string
  /** The UDP host the stream comes from: what per-host limits and network groups count by. */
  readonly remoteHost: string | undefined
  readonly #stream: NoiseSecretStream
  #status: ConnectionStatus = 'open'
  #error: Error | undefined
  #aborted = false
  #gated = true
  #paused = false
  #held: Held[] = []
  #closeSeen = false
  #closeEmitted = false
  readonly #closed: Promise<void>
  #resolveClosed!: () => void

  constructor(stream: NoiseSecretStream, localAddress: string, remoteAddress: string, path: DhtPath) {
    super()
    this.#stream = stream
    this.localAddress = localAddress
    this.remoteAddress = remoteAddress
    this.remoteHost = stream.rawStream.remoteHost
    registerSession(this, {
      remotePeerId: stream.remotePublicKey.toString('hex'),
      handshakeHash: stream.handshakeHash ?? new Uint8Array(0),
      initiator: stream.isInitiator,
      remoteHost: stream.rawStream.remoteHost ?? '',
      remotePort: stream.rawStream.remotePort ?? 0,
      path,
    })
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve
    })
    stream.on('data', (chunk: Buffer) => this.#push({ kind: 'data', chunk }))
    stream.on('end', () => this.#push({ kind: 'end' }))
    stream.on('drain', () => this.#push({ kind: 'drain' }))
    stream.on('error', (err: Error) => {
      if (!this.#aborted) this.#error ??= mapStreamError(err)
    })
    stream.on('close', () => {
      this.#status = 'closed'
      this.#closeSeen = true
      this.#resolveClosed()
      this.#flush()
    })
    // The code awaiting dial() (or running the listener callback) attaches its listeners in
    // microtasks; a microtask that schedules a nextTick runs after that whole chain.
    queueMicrotask(() =>
      process.nextTick(() => {
        this.#gated = false
        this.#flush()
      }),
    )
  }

  get status(): ConnectionStatus {
    return this.#status
  }

  send(bytes: Uint8Array): boolean {
    if (this.#status !== 'open') {
      throw new TransportError('CONNECTION_CLOSED', `cannot send: the connection is ${this.#status}`)
    }
    if (this.#stream.destroyed) return false
    // HyperDHT uses empty messages as keep-alives and drops them: nothing to send.
    if (bytes.byteLength === 0) return true
    // Not copied: the stream encrypts the bytes into a message of its own.
    const view = Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    return this.#stream.write(view)
  }

  close(options: AbortOptions = {}): Promise<void> {
    const { signal } = options
    if (this.#status === 'closed') return this.#closed
    if (signal?.aborted) {
      const err = aborted(signal, 'close')
      this.abort(err)
      return Promise.reject(err)
    }
    if (this.#status === 'open') {
      this.#status = 'closing'
      this.#stream.end()
    }
    if (signal === undefined) return this.#closed
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const err = aborted(signal, 'close')
        this.abort(err)
        reject(err)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.#closed.then(() => {
        signal.removeEventListener('abort', onAbort)
        resolve()
      })
    })
  }

  abort(err?: Error): void {
    if (this.#status === 'closed') return
    this.#status = 'closed'
    this.#aborted = true
    this.#error = err
    // The remote gets a reset (ECONNRESET), never an end.
    this.#stream.destroy()
  }

  pause(): void {
    this.#paused = true
    this.#stream.pause()
  }

  resume(): void {
    if (!this.#paused) return
    this.#paused = false
    // Held data goes out on a later tick, never from inside resume().
    process.nextTick(() => {
      this.#flush()
      if (!this.#paused) this.#stream.resume()
    })
  }

  #push(item: Held): void {
    if (this.#aborted) return
    this.#held.push(item)
    this.#flush()
  }

  #flushing = false

  #flush(): void {
    if (this.#gated || this.#flushing || this.#closeEmitted) return
    this.#flushing = true
    try {
      while (this.#held.length > 0) {
        const item = this.#held[0]!
        if (item.kind === 'data' && this.#paused) break
        this.#held.shift()
        if (item.kind === 'data') this.emit('data', item.chunk)
        else if (item.kind === 'end') this.emit('end')
        else if (this.#status !== 'closed') this.emit('drain')
        if (this.#closeEmitted) return
      }
      // 'close' waits behind held data, unless it closed with an error (held data is then dropped).
      if (this.#closeSeen && (this.#held.length === 0 || this.#error !== undefined)) {
        this.#held = []
        this.#closeEmitted = true
        this.emit('close', this.#error)
      }
    } finally {
      this.#flushing = false
    }
  }
}

function aborted(signal: AbortSignal, what: string): TransportError {
  return new TransportError('ABORTED', `${what} aborted`, { cause: signal.reason })
}

function mapStreamError(err: Error): TransportError {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ECONNRESET')
    return new TransportError('CONNECTION_RESET', 'connection reset by the remote', { cause: err })
  if (code === 'ETIMEDOUT')
    return new TransportError('CONNECTION_RESET', 'the remote stopped answering', { cause: err })
  return new TransportError('CONNECTION_RESET', `connection broken (${code ?? err.message})`, { cause: err })
}
