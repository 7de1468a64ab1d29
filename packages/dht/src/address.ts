import { TransportError } from '@parley/core'

/** The scheme of every DHT address: `dht:<64 lowercase hex characters of an Ed25519 public key>`. */
export const DHT_SCHEME = 'dht:'
const DHT_ADDRESS = /^dht:([0-9a-f]{64})$/

/** True when `address` is a well-formed `dht:<peer id>` (syntax only). */
export function isDhtAddress(address: string): boolean {
  return typeof address === 'string' && DHT_ADDRESS.test(address)
}

/**
 * The peer id (the public key in hex) of a `dht:<peer id>` address.
 * @throws TransportError `INVALID_ADDRESS` for anything else
 */
export function parseDhtAddress(address: string): string {
  const match = typeof address === 'string' ? DHT_ADDRESS.exec(address) : null
  if (match === null) {
    const shown = typeof address === 'string' ? JSON.stringify(address.slice(0, 80)) : typeof address
    throw new TransportError(
      'INVALID_ADDRESS',
      `invalid address ${shown}: expected dht: and 64 lowercase hex characters (a peer id)`,
    )
  }
  return match[1]!
}

/** The DHT address of a peer id. */
export function dhtAddress(peerId: string): string {
  return `${DHT_SCHEME}${peerId}`
}
