import { createServer } from 'node:net'
import { tcpTransport } from '@parley/core'
import { describe } from 'vitest'
import { describeTransport } from '../src/transport-compliance.js'

/** Binds an ephemeral port and lets it go: an address nothing listens on (or undefined if `host` cannot be bound). */
function freePort(host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(undefined))
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

const ipv6 = (await freePort('::1')) !== undefined

describeTransport('tcp 127.0.0.1', async () => ({
  transport: tcpTransport(),
  listenAddress: '127.0.0.1:0',
  unusedAddress: `127.0.0.1:${await freePort('127.0.0.1')}`,
}))

// Some containers have no IPv6 loopback; that is the only reason to skip.
describe.skipIf(!ipv6)('::1 is bindable', () => {
  describeTransport('tcp [::1]', async () => ({
    transport: tcpTransport(),
    listenAddress: '[::1]:0',
    unusedAddress: `[::1]:${await freePort('::1')}`,
  }))
})
