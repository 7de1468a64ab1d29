import type { AbortOptions, Connection, Listener, Transport } from '@parley/core'

/**
 * One {@link Transport} over two: `dht:` addresses go to `dht`, every other address to `other` (TCP).
 * A peer built on it dials both kinds of address, which peer exchange may hand it, and listens on
 * whichever kind its `listen` address is.
 *
 * Pair it with `dhtUpgrader({ fallback: noiseUpgrader(...) })`, which picks the upgrader per
 * connection the same way.
 */
export function routingTransport(dht: Transport, other: Transport): Transport {
  const pick = (address: string) => (typeof address === 'string' && address.startsWith('dht:') ? dht : other)
  return {
    name: `${dht.name}+${other.name}`,
    listen(
      address: string,
      onConnection: (conn: Connection) => void,
      options?: AbortOptions,
    ): Promise<Listener> {
      return pick(address).listen(address, onConnection, options)
    },
    dial(address: string, options?: AbortOptions): Promise<Connection> {
      return pick(address).dial(address, options)
    },
  }
}
