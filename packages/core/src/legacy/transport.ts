import { WrappedConnection } from '../secure/wrapped-connection.js'
import type { AbortOptions, Connection, Listener, Transport } from '../transport.js'
import { bridgeInternals } from './bridge.js'
import type { LegacyBridge } from './bridge-types.js'
import { isLegacyFirstByte } from './format.js'

/** Options of {@link legacyAwareTransport}. */
export interface LegacyAwareTransportInit {
  /**
   * How long an inbound connection may stay silent before it is reset (`dropped` with `SILENT`).
   * Until its first byte nobody knows whether it is Parley or legacy, so the peer's own handshake
   * timer has not started yet: use the peer's `handshakeTimeout`. @default 10_000 ms
   */
  sniffTimeout?: number
  /** Inbound connections waiting for their first byte at once; more are reset. @default 256 */
  maxPending?: number
}

/**
 * Decorates a transport so its listeners accept both Parley and legacy plain-text connections on
 * the same port. With it, `createPeer({ transport: legacyAwareTransport(tcpTransport(), bridge) })`
 * is the core side of `--legacy`.
 *
 * Each inbound connection is held until its first chunk arrives (a Parley responder waits for that
 * chunk anyway, so Parley connections are not delayed), then told apart by its first byte:
 *
 * ```
 *  first byte 0x00          Parley (Noise message 1 starts 00 20; a bare frame length ≤ 1 MiB starts 00)
 *     → handed to the peer untouched, the sniffed chunk delivered again first
 *  first byte 0x21–0x7E     legacy (the string starts with the sender's ip:port)
 *     → consumed by the bridge: parsed strictly, then a `message`, `peer:*` or `dropped` event
 *  anything else            handed to the peer, whose handshake refuses it (as without the bridge)
 * ```
 *
 * Dialing is not changed. A connection silent for `sniffTimeout` is reset; closing the listener
 * resets the connections still being sniffed.
 *
 * @throws TypeError when `bridge` was not made by {@link createLegacyBridge}; RangeError for bad bounds
 */
export function legacyAwareTransport(
  inner: Transport,
  bridge: LegacyBridge,
  init: LegacyAwareTransportInit = {},
): Transport {
  const hooks = bridgeInternals(bridge)
  const sniffTimeout = init.sniffTimeout ?? 10_000
  const maxPending = init.maxPending ?? 256
  if (!(sniffTimeout > 0 && Number.isFinite(sniffTimeout))) {
    throw new RangeError(`sniffTimeout must be a positive number of ms, got ${sniffTimeout}`)
  }
  if (!(Number.isInteger(maxPending) && maxPending > 0)) {
    throw new RangeError(`maxPending must be a positive integer, got ${maxPending}`)
  }

  return {
    name: `${inner.name}+legacy`,
    dial: (address: string, options?: AbortOptions) => inner.dial(address, options),
    async listen(
      address: string,
      onConnection: (conn: Connection) => void,
      options?: AbortOptions,
    ): Promise<Listener> {
      /** Connections not classified yet, each with the function that gives up on it. */
      const pending = new Map<Connection, () => void>()
      const sniff = (conn: Connection) => {
        if (pending.size >= maxPending) {
          conn.abort()
          hooks.drop(
            'TOO_MANY_CONNECTIONS',
            `already ${pending.size} connections waiting for their first byte (the limit)`,
            conn.remoteAddress,
            0,
          )
          return
        }
        const done = () => {
          clearTimeout(timer)
          conn.off('data', onData)
          conn.off('end', onEnd)
          conn.off('close', done)
          pending.delete(conn)
        }
        const onData = (chunk: Uint8Array) => {
          const first = chunk[0]
          if (first === undefined) return
          done()
          if (!isLegacyFirstByte(first)) {
            onConnection(new ReplayConnection(conn, chunk))
          } else if (hooks.isClosed()) {
            conn.abort()
          } else {
            hooks.accept(conn, chunk)
          }
        }
        const onEnd = () => {
          done()
          void conn.close().catch(() => {})
          if (!hooks.isClosed())
            hooks.drop('EMPTY', 'the connection closed without sending a byte', conn.remoteAddress, 0)
        }
        const timer = setTimeout(() => {
          done()
          conn.abort()
          if (!hooks.isClosed()) {
            hooks.drop('SILENT', `the connection sent nothing in ${sniffTimeout} ms`, conn.remoteAddress, 0)
          }
        }, sniffTimeout)
        timer.unref?.()
        pending.set(conn, () => {
          done()
          conn.abort()
        })
        conn.on('data', onData)
        conn.on('end', onEnd)
        conn.on('close', done)
      }
      const listener = await inner.listen(address, sniff, options)
      return {
        address: listener.address,
        async close() {
          for (const giveUp of [...pending.values()]) giveUp()
          await listener.close()
        },
      }
    },
  }
}

/**
 * A connection whose first chunk was read while sniffing: delivers that chunk again, before
 * anything else, then passes everything through. The wrapper also keeps the transport's promise
 * that no event fires in the tick the connection is handed out.
 */
class ReplayConnection extends WrappedConnection {
  constructor(inner: Connection, sniffed: Uint8Array) {
    super(inner, '', sniffed)
  }

  protected override consume(chunk: Uint8Array): Uint8Array | null {
    this.deliver(chunk)
    return null
  }

  override send(bytes: Uint8Array): boolean {
    return this.inner.send(bytes)
  }
}
