/**
 * Parley over HyperDHT: a peer reachable as `dht:<peer id>` from anywhere, through NATs, and topic
 * discovery. See docs/DHT.md.
 *
 * ```ts
 * import { createPeer, generateIdentity } from '@parley/core'
 * import { dhtTransport, dhtUpgrader, joinTopic } from '@parley/dht'
 *
 * const identity = generateIdentity()
 * const transport = dhtTransport({ identity, bootstrap: [{ host: '203.0.113.7', port: 49737 }] })
 * const peer = createPeer({ identity, transport, upgrader: dhtUpgrader(), listen: transport.address })
 * await peer.start()
 * const topic = joinTopic(transport, 'our room')
 * // A reported peer holds one of the topic's places until it is forgotten: free it once the dial is over.
 * topic.on('peer', (address) => void peer.connect(address).then(() => topic.forget(address), () => topic.failed(address)))
 * ```
 */
export * from './address.js'
export * from './cli-options.js'
export { type DhtKeyPair, identityKeyPair } from './keys.js'
export * from './lan.js'
export * from './routing-transport.js'
export { type DhtPath, type DhtSession, dhtSession } from './session.js'
export * from './topic.js'
export {
  type Bootstrap,
  type BootstrapNode,
  type DhtTransport,
  type DhtTransportInit,
  dhtTransport,
} from './transport.js'
export * from './upgrader.js'
