/**
 * Test harness for Parley: N peers on an in-memory network, event waiting without sleeps,
 * fault injection, and the transport compliance suite.
 *
 * ```ts
 * const net = await createTestNetwork({ size: 3 })
 * onTestFinished(() => net.stop())
 * await net.fullMesh()
 * const got = waitFor(net.peers[1]!, 'message')
 * await net.peers[0]!.send(net.peers[1]!.id, 'hi')
 * ```
 */
export * from './attack/index.js'
export * from './chaos.js'
export * from './intercept.js'
export * from './legacy-peer.js'
export * from './network.js'
export * from './transport-compliance.js'
