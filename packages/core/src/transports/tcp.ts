import { EventEmitter } from 'node:events'
import { createConnection, createServer, type Server, type Socket, type TcpNetConnectOpts } from 'node:net'
import { TransportError, type TransportErrorCode } from '../errors.js'
import { isSendBuffer, releaseSendBuffer } from '../send-buffers.js'
import type {
  AbortOptions,
  Connection,
  ConnectionEvents,
  ConnectionStatus,
  Listener,
  Transport,
} from '../transport.js'
import { abortedError, closedOrAborted } from './abort.js'
import { formatAddress, parseAddress } from './address.js'

/** Options of {@link tcpTransport}. */
export interface TcpTransportInit {
  /**
   * How long `dial()` waits for the TCP handshake before failing with `DIAL_TIMEOUT`, in milliseconds.
   * @default 10_000
   */
  dialTimeout?: number
  /**
   * Bytes a connection buffers for writing before `send()` returns false (and buffers for reading
   * before it stops reading from the kernel while paused).
   * @default 65_536
   */
  highWaterMark?: number
}

/**
 * A {@link Transport} over `node:net`. Addresses are `host:port`, IPv6 in brackets (`[::1]:4000`);
 * listening on port 0 binds an ephemeral port, which `listener.address` reports.
 *
 * Sockets are half-open capable (`allowHalfOpen`, so `end` from the remote leaves our side writable)
 * and have Nagle's algorithm off (`noDelay`): the framing layer already coalesces writes, so Nagle
 * would only add latency.
 *
 * Errors map to {@link TransportError} codes: `ECONNREFUSED` → `CONNECTION_REFUSED`,
 * `EADDRINUSE` → `ADDRESS_IN_USE`, a malformed address → `INVALID_ADDRESS` (checked before any
 * network call), the dial timer → `DIAL_TIMEOUT`, the caller's signal → `ABORTED`, and a connection
 * broken by `ECONNRESET`/`EPIPE` closes with `CONNECTION_RESET`.
 */
export function tcpTransport(init: TcpTransportInit = {}): Transport {
  return new TcpTransport(init)
}

const DEFAULT_DIAL_TIMEOUT = 10_000
const DEFAULT_HIGH_WATER_MARK = 64 * 1024

class TcpTransport implements Transport {
  readonly name = 'tcp'
  readonly #dialTimeout: number
  readonly #highWaterMark: number

  constructor(init: TcpTransportInit) {
    this.#dialTimeout = init.dialTimeout ?? DEFAULT_DIAL_TIMEOUT
    this.#highWaterMark = init.highWaterMark ?? DEFAULT_HIGH_WATER_MARK
  }

  async listen(
    address: string,
    onConnection: (conn: Connection) => void,
    options: AbortOptions = {},
  ): Promise<Listener> {
    const { host, port } = parseAddress(address)
    const { signal } = options
    if (signal?.aborted) throw abortedError(signal, 'listen')
    const server = createServer({
      allowHalfOpen: true,
      noDelay: true,
      highWaterMark: this.#highWaterMark,
    })
    server.on('connection', (socket) => {
      // A socket reset between accept() and here has no addresses left; nobody could use it.
      if (socket.remoteAddress === undefined || socket.localAddress === undefined) {
        socket.destroy()
        return
      }
      onConnection(new TcpConnection(socket))
    })
    await new Promise<void>((resolve, reject) => {
      const settle = (err?: Error) => {
        server.off('listening', onListening)
        server.off('error', onError)
        signal?.removeEventListener('abort', onAbort)
        if (err === undefined) {
          resolve()
        } else {
          server.close()
          reject(err)
        }
      }
      const onListening = () => settle()
      const onError = (err: Error) => settle(mapListenError(err, address))
      const onAbort = () => settle(abortedError(signal!, 'listen'))
      server.once('listening', onListening)
      server.once('error', onError)
      signal?.addEventListener('abort', onAbort, { once: true })
      server.listen({ host, port })
    })
    // After listening, errors are per-accept hiccups (EMFILE and the like); Node retries by itself,
    // and without a handler the 'error' event would crash the process.
    server.on('error', () => {})
    return new TcpListener(server)
  }

  dial(address: string, options: AbortOptions = {}): Promise<Connection> {
    // Not `async`: everything up to connect() runs in the caller's tick, so a caller (or a test with
    // fake timers) sees the dial timer armed as soon as dial() returns.
    let target: { host: string; port: number }
    try {
      target = parseAddress(address)
      if (target.port === 0) throw new TransportError('INVALID_ADDRESS', `cannot dial port 0 (${address})`)
    } catch (err) {
      return Promise.reject(err)
    }
    const { signal } = options
    if (signal?.aborted) return Promise.reject(abortedError(signal, 'dial'))

    return new Promise<Connection>((resolve, reject) => {
      // `highWaterMark` reaches the socket's stream constructor; @types/node just does not list it.
      const connectOptions: TcpNetConnectOpts & { highWaterMark: number } = {
        host: target.host,
        port: target.port,
        allowHalfOpen: true,
        noDelay: true,
        highWaterMark: this.#highWaterMark,
      }
      const socket = createConnection(connectOptions)
      const settle = (err?: TransportError) => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        socket.off('connect', onConnect)
        socket.off('error', onError)
        if (err === undefined) {
          resolve(new TcpConnection(socket))
        } else {
          // A late error from the abandoned socket must not crash the process.
          socket.on('error', () => {})
          socket.destroy()
          reject(err)
        }
      }
      const onConnect = () => settle()
      const onError = (err: Error) => settle(mapDialError(err, address))
      const onAbort = () => settle(abortedError(signal!, 'dial'))
      socket.once('connect', onConnect)
      socket.once('error', onError)
      signal?.addEventListener('abort', onAbort, { once: true })
      // Looked up at call time so fake timers apply. unref(): the socket keeps the loop alive anyway.
      const timer = setTimeout(() => {
        settle(new TransportError('DIAL_TIMEOUT', `no answer from ${address} in ${this.#dialTimeout} ms`))
      }, this.#dialTimeout)
      timer.unref?.()
    })
  }
}

class TcpListener implements Listener {
  readonly address: string
  readonly #server: Server
  #closed = false

  constructor(server: Server) {
    this.#server = server
    const bound = server.address()
    if (bound === null || typeof bound === 'string') throw new TypeError('expected a TCP server address')
    this.address = formatAddress(bound.address, bound.port)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    // server.close()'s callback waits for every accepted connection to end; we only stop accepting,
    // which close() does synchronously (the listening socket is closed before it returns).
    this.#server.close()
  }
}

class TcpConnection extends EventEmitter<ConnectionEvents> implements Connection {
  readonly remoteAddress: string
  readonly localAddress: string
  readonly #socket: Socket
  #status: ConnectionStatus = 'open'
  /** Why it closed: set by abort(), or by the first socket error. */
  #error: Error | undefined
  #aborted = false
  readonly #closed: Promise<void>

  constructor(socket: Socket) {
    super()
    this.#socket = socket
    this.remoteAddress = formatAddress(socket.remoteAddress ?? '', socket.remotePort ?? 0)
    this.localAddress = formatAddress(socket.localAddress ?? '', socket.localPort ?? 0)
    // Hot path: the socket's Buffers go straight through (a Buffer is a Uint8Array).
    socket.on('data', (chunk: Buffer) => this.emit('data', chunk))
    socket.on('drain', () => this.emit('drain'))
    socket.on('end', () => this.emit('end'))
    socket.on('error', (err) => {
      if (!this.#aborted) this.#error ??= mapSocketError(err)
    })
    this.#closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.#status = 'closed'
        this.emit('close', this.#error)
        resolve()
      })
    })
  }

  get status(): ConnectionStatus {
    return this.#status
  }

  send(bytes: Uint8Array): boolean {
    if (this.#status !== 'open') {
      throw new TransportError('CONNECTION_CLOSED', `cannot send: the connection is ${this.#status}`)
    }
    // Reset by the remote, 'close' not emitted yet: the bytes could never arrive. 'close' follows.
    if (this.#socket.destroyed) return false
    // Not copied: send() owns `bytes` (see Connection.send). Node keeps a reference to queued writes,
    // and a Uint8Array goes in as a Buffer view of the same memory. A recyclable record buffer goes
    // back once the kernel has it (the callback also runs when the write fails or is dropped).
    if (!isSendBuffer(bytes)) return this.#socket.write(bytes)
    const socket = this.#socket
    const queued = socket.writableLength
    const flowing = socket.write(bytes, () => releaseSendBuffer(bytes))
    // Unchanged length: the write completed synchronously, so the kernel has copied the bytes, but the
    // callback waits for the next tick. Give the memory back now, or a burst of sends (a loop of
    // peer.send) would take fresh memory for every record until the ticks run; the callback's late
    // release is then a no-op, even once the memory is lent again (see releaseSendBuffer).
    if (socket.writableLength === queued) releaseSendBuffer(bytes)
    return flowing
  }

  close(options: AbortOptions = {}): Promise<void> {
    const { signal } = options
    if (this.#status === 'closed') return this.#closed
    if (signal?.aborted) {
      const err = abortedError(signal, 'close')
      this.abort(err)
      return Promise.reject(err)
    }
    if (this.#status === 'open') {
      this.#status = 'closing'
      // Flushes queued writes, then sends FIN. With allowHalfOpen the socket is destroyed (and
      // 'close' emitted) once the remote's FIN has been read too.
      this.#socket.end()
    }
    return closedOrAborted(this.#closed, signal, (err) => this.abort(err))
  }

  abort(err?: Error): void {
    if (this.#status === 'closed') return
    this.#status = 'closed'
    this.#aborted = true
    this.#error = err
    if (!this.#socket.destroyed) {
      // RST instead of FIN, so the remote learns it was not a clean close.
      this.#socket.resetAndDestroy()
    }
  }

  pause(): void {
    this.#socket.pause()
  }

  resume(): void {
    this.#socket.resume()
  }
}

function errnoCode(err: Error): string | undefined {
  const code = (err as NodeJS.ErrnoException).code
  if (typeof code === 'string') return code
  // With autoSelectFamily (default since Node 20) a host with several addresses fails with an
  // AggregateError holding one error per address.
  const first = err instanceof AggregateError ? err.errors[0] : undefined
  return first instanceof Error ? errnoCode(first) : undefined
}

function mapDialError(err: Error, address: string): TransportError {
  const code = errnoCode(err)
  if (code === 'ETIMEDOUT') return wrap('DIAL_TIMEOUT', `dial ${address} timed out`, err)
  if (code === 'ECONNREFUSED') return wrap('CONNECTION_REFUSED', `nothing listens on ${address}`, err)
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return wrap('CONNECTION_REFUSED', `cannot resolve the host of ${address}`, err)
  }
  return wrap('CONNECTION_REFUSED', `cannot connect to ${address} (${code ?? err.message})`, err)
}

function mapListenError(err: Error, address: string): TransportError {
  const code = errnoCode(err)
  if (code === 'EADDRINUSE') return wrap('ADDRESS_IN_USE', `${address} is in use`, err)
  // EADDRNOTAVAIL (not a local address), EACCES (privileged port), ENOTFOUND, ...: not usable here.
  return wrap('INVALID_ADDRESS', `cannot listen on ${address} (${code ?? err.message})`, err)
}

function mapSocketError(err: Error): TransportError {
  const code = errnoCode(err)
  const why =
    code === 'ECONNRESET' || code === 'EPIPE' ? 'reset by the remote' : `broken (${code ?? err.message})`
  return wrap('CONNECTION_RESET', `connection ${why}`, err)
}

function wrap(code: TransportErrorCode, message: string, cause: Error): TransportError {
  return new TransportError(code, message, { cause })
}
