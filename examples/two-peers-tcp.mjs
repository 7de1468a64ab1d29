// @ts-check
// Two peers over TCP on this machine: alice connects to bob and sends a message that bob acknowledges.
// Run: node examples/two-peers-tcp.mjs (after `pnpm build`)
import { createPeer, tcpTransport } from '@parley/core'

// Port 0: the system picks a free port; `peer.addresses` says which.
const alice = createPeer({ transport: tcpTransport(), name: 'alice', listen: '127.0.0.1:0' })
const bob = createPeer({ transport: tcpTransport(), name: 'bob', listen: '127.0.0.1:0' })

bob.on('message', (message) => console.log(`bob received "${message.text}" from ${message.from.name}`))
bob.on('peer:disconnect', ({ peer, reason }) => console.log(`bob: ${peer.name} left (${reason})`))

await alice.start()
await bob.start()

// connect() resolves once the Noise handshake has authenticated both keys.
const info = await alice.connect(bob.addresses[0] ?? '')
console.log(`alice is connected to ${info.name}`)

// send() resolves when bob has acknowledged the message, and rejects with a PeerError otherwise.
const result = await alice.send(info.id, 'hello, bob')
console.log(`bob acknowledged it: ${result.peerId === bob.id}`)

// stop() says GOODBYE to every peer, waits (bounded) for their acknowledgements and stops listening.
// Bob hears of it as an event of his own: wait for it before stopping him too, or he leaves first.
const aliceLeft = new Promise((resolve) => bob.once('peer:disconnect', resolve))
await alice.stop()
await aliceLeft
await bob.stop()
