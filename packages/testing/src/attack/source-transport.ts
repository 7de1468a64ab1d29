import { EventEmitter } from 'node:events'
import { createConnection, type Socket } from 'node:net'
import type { AbortOptions, Connection, ConnectionEvents, ConnectionStatus, Transport } from '@parley/core'
import { TransportError } from '@parley/core'

/**
 * A dial-only TCP transport whose connections leave from `sourceHost` (e.g. `127.0.0.2`): on Linux every
 * 127.0.0.0/8 address is loopback, so an attacker can come from a different host than the honest peers
 * (127.0.0.1) without leaving the machine. Core's tcpTransport has no source-address option.
 */
export function sourceTransport(sourceHost: string): Transport {
  return {
    name: `tcp-from-${sourceHost}`,
    listen() {
      return Promise.reject(new TransportError('INVALID_ADDRESS', 'sourceTransport only dials'))
    },
    dial(address: string, options: AbortOptions = {}): Promise<Connection> {
      const colon = address.lastIndexOf(':')
      const host = address.slice(0, colon).replace(/^\[|\]$/g, '')
      const port = Number(address.slice(colon + 1))
      return new Promise((resolve, reject) => {
        const socket = createConnection({
          host,
          port,
          localAddress: sourceHost,
          allowHalfOpen: true,
          noDelay: true,
        })
        const onAbort = () => socket.destroy(new TransportError('ABORTED', 'dial aborted'))
        options.signal?.addEventListener('abort', onAbort, { once: true })
        socket.once('connect', () => {
          options.signal?.removeEventListener('abort', onAbort)
          socket.off('error', reject)
          resolve(new SocketConnection(socket))
        })
        socket.once('error', (err) => {
          options.signal?.removeEventListener('abort', onAbort)
          reject(new TransportError('CONNECTION_REFUSED', `cannot connect to ${address}`, { cause: err }))
        })
      })
    },
  }
}

/** The least a Connection needs over a net.Socket (core's TCP connection class is private). */
class SocketConnection extends EventEmitter<ConnectionEvents> implements Connection {
  readonly remoteAddress: string
  readonly localAddress: string
  readonly #socket: Socket
  #status: ConnectionStatus = 'open'
  #error: Error | undefined
  readonly #closed: Promise<void>

  constructor(socket: Socket) {
    super()
    this.#socket = socket
    this.remoteAddress = `${socket.remoteAddress}:${socket.remotePort}`
    this.localAddress = `${socket.localAddress}:${socket.localPort}`
    socket.on('data', (chunk: Buffer) => this.emit('data', chunk))
    socket.on('drain', () => this.emit('drain'))
    socket.on('end', () => this.emit('end'))
    socket.on('error', (err) => {
      this.#error ??= err
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
    if (this.#status !== 'open' || this.#socket.destroyed) return false
    return this.#socket.write(bytes)
  }

  close(): Promise<void> {
    if (this.#status === 'open') {
      this.#status = 'closing'
      this.#socket.end()
    }
    return this.#closed
  }

  abort(err?: Error): void {
    if (this.#status === 'closed') return
    this.#status = 'closed'
    this.#error = err
    if (!this.#socket.destroyed) this.#socket.resetAndDestroy()
  }

  pause(): void {
    this.#socket.pause()
  }

  resume(): void {
    this.#socket.resume()
  }
}

/**
 * The `i`-th attacker source address: 127.1.0.1, 127.2.0.1, … 127.200.0.1, then 127.1.0.2, …: each in a
 * /16 of its own (the granularity Bitcoin Core groups peers by) and none of them 127.0.0.1, where the
 * honest peers come from. An attacker spread over them looks like many unrelated hosts.
 */
export function attackerHost(i: number): string {
  return `127.${1 + (i % 200)}.0.${1 + (Math.floor(i / 200) % 254)}`
}
