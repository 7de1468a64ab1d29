import type { AbortOptions, Transport } from '@parley/core'
import type DHT from 'hyperdht'
import type { HostPort, KeyPair } from 'hyperdht'

/**
 * The HyperDHT node and key pair of a DHT transport, for topic discovery. Internal: the package does not
 * export it, so no HyperDHT type appears in its public declarations.
 */
export interface DhtNodeAccess {
  node(options?: AbortOptions): Promise<DHT>
  readonly keyPair: KeyPair
  /** Remembers where a peer found through a topic can be reached fastest. */
  hint(peerId: string, relayAddresses: HostPort[] | undefined): void
  /** The relay addresses of the listening server, announced with topics. */
  relayAddresses(): HostPort[]
}

const access = new WeakMap<Transport, DhtNodeAccess>()

export function registerNodeAccess(transport: Transport, node: DhtNodeAccess): void {
  access.set(transport, node)
}

/** The node behind a transport made by `dhtTransport()`. */
export function dhtNodeOf(transport: Transport): DhtNodeAccess | undefined {
  return access.get(transport)
}
