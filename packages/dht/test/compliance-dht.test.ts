import { randomBytes } from 'node:crypto'
import { describeTransport } from '@parley/testing'
import { dhtPeerTransport, useTestnet } from './helpers.js'

const testnet = useTestnet()

describeTransport('dht', () => {
  const { transport } = dhtPeerTransport(testnet.bootstrap)
  return {
    transport,
    listenAddress: transport.address,
    // A key nobody listens on.
    unusedAddress: `dht:${randomBytes(32).toString('hex')}`,
    listenerAddress: /^dht:[0-9a-f]{64}$/,
    invalidAddresses: [
      'dht:',
      'dht:abc',
      `dht:${'A'.repeat(64)}`,
      `dht:${'0'.repeat(63)}`,
      `dht:${'0'.repeat(65)}`,
      `dht:${'0'.repeat(64)}:1`,
      `DHT:${'0'.repeat(64)}`,
    ],
    undialableAddress: null,
    teardown: () => transport.destroy(),
  }
})
