import type { ConnectionUpgrader } from './upgrader.js'
import { WrappedConnection } from './wrapped-connection.js'

class PlaintextConnection extends WrappedConnection {
  protected override consume(chunk: Uint8Array): Uint8Array | null {
    this.deliver(chunk)
    return null
  }

  override send(bytes: Uint8Array): boolean {
    return this.inner.send(bytes)
  }
}

/**
 * A pass-through upgrader for tests and benchmarks: no encryption, no authentication.
 * `remotePeerId` is always `''`. Never use it on a real network.
 */
export function plaintextUpgrader(): ConnectionUpgrader {
  return {
    async upgrade(conn, options) {
      if (options.signal?.aborted) {
        conn.abort(options.signal.reason instanceof Error ? options.signal.reason : undefined)
        throw options.signal.reason
      }
      return new PlaintextConnection(conn, '')
    },
  }
}
