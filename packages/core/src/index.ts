/**
 * Parley core: peers over an injectable transport.
 *
 * ```ts
 * import { createPeer, tcpTransport } from '@parley/core'
 *
 * const peer = createPeer({ transport: tcpTransport(), name: 'alice', listen: '127.0.0.1:0' })
 * peer.on('message', (m) => console.log(`${m.from.name}: ${m.text}`))
 * await peer.start()
 * const bob = await peer.connect('127.0.0.1:4001')
 * await peer.send(bob.id, 'hello') // resolves when bob has acknowledged it
 * await peer.stop()                // GOODBYE to everyone
 * ```
 */
export { createHandshakeGate, HandshakeGate, processHandshakeGate } from './admission.js'
export * from './connection-state.js'
export * from './errors.js'
export { looksLikeId } from './find-target.js'
export * from './identity.js'
export * from './known-peers.js'
export * from './legacy/index.js'
export * from './peer.js'
export * from './peer-errors.js'
export { reachableFirst } from './peer-store.js'
export * from './peer-types.js'
export { MAX_RECORD_PLAINTEXT, type NoiseUpgraderInit, noiseUpgrader } from './secure/channel.js'
export { hasAesInstructions } from './secure/cpu-features.js'
export * from './secure/errors.js'
export type { NoiseCipher } from './secure/noise-cipher-state.js'
export * from './secure/plaintext.js'
export * from './secure/upgrader.js'
export { WrappedConnection } from './secure/wrapped-connection.js'
export { CHAT_PROTOCOL } from './services/chat.js'
export { PEERS_PROTOCOL } from './services/peer-exchange.js'
export * from './services/service.js'
export * from './services/standard-wire.js'
export * from './transport.js'
export { formatAddress, type HostPort, parseAddress } from './transports/address.js'
export * from './transports/memory.js'
export * from './transports/tcp.js'
export { hostOf, isLoopback, netgroupOf, TokenBucket } from './util.js'
