import type { AbortOptions, Connection, Listener, Transport } from '@parley/core'

/**
 * Rewrites what one side writes, before it reaches the inner transport: return the bytes to send
 * (changed or not), or `null` to swallow them. `index` counts the calls on that connection, from 0.
 */
export type SendInterceptor = (bytes: Uint8Array, index: number, conn: Connection) => Uint8Array | null

/**
 * Wraps a transport so tests can tamper with, replay or swallow the bytes its connections send —
 * over any transport, TCP included, because it sits on the `Transport` interface.
 */
export function interceptTransport(inner: Transport, intercept: SendInterceptor): Transport {
  const wrap = (conn: Connection): Connection => {
    let index = 0
    const send = conn.send.bind(conn)
    // Own-property override: every other method and event of the connection stays the real one.
    conn.send = (bytes: Uint8Array) => {
      const out = intercept(bytes, index++, conn)
      return out === null ? true : send(out)
    }
    return conn
  }
  return {
    name: `intercepted ${inner.name}`,
    listen(
      address: string,
      onConnection: (conn: Connection) => void,
      options?: AbortOptions,
    ): Promise<Listener> {
      return inner.listen(address, (conn) => onConnection(wrap(conn)), options)
    },
    async dial(address: string, options?: AbortOptions): Promise<Connection> {
      return wrap(await inner.dial(address, options))
    },
  }
}
