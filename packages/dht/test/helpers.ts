import createTestnet from '@hyperswarm/testnet'
import { generateIdentity, type Identity } from '@parley/core'
import { afterAll, beforeAll } from 'vitest'
import { type BootstrapNode, type DhtTransport, dhtTransport } from '../src/index.js'

/**
 * A private HyperDHT on loopback for the tests of one file: 4 nodes (HyperDHT's NAT classification
 * wants about 4 samples; with fewer, connects fail), destroyed after the file.
 */
export function useTestnet(): { readonly bootstrap: BootstrapNode[] } {
  let testnet: Awaited<ReturnType<typeof createTestnet>> | undefined
  const state = { bootstrap: [] as BootstrapNode[] }
  beforeAll(async () => {
    testnet = await createTestnet(4, { host: '127.0.0.1' })
    state.bootstrap = testnet.bootstrap
  })
  afterAll(async () => {
    await testnet?.destroy()
  })
  return state
}

/** A fresh identity and a DHT transport for it on the testnet. */
export function dhtPeerTransport(bootstrap: BootstrapNode[]): {
  identity: Identity
  transport: DhtTransport
} {
  const identity = generateIdentity()
  return { identity, transport: dhtTransport({ identity, bootstrap }) }
}
