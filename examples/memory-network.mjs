// @ts-check
// A test network in memory: three peers without sockets, and faults injected on purpose.
// memoryNetwork() is what tests use: isolated per test, deterministic, with partitions, delays,
// chunking and dropped connections. Run: node examples/memory-network.mjs (after `pnpm build`)
import { createPeer, memoryNetwork, memoryTransport, PeerError } from '@parley/core'

const network = memoryNetwork()
/** @param {string} name */
const peer = (name) =>
  createPeer({ transport: memoryTransport(network), name, listen: `${name}:0`, reconnect: false })
const alice = peer('alice')
const bob = peer('bob')
const carol = peer('carol')
for (const p of [alice, bob, carol]) await p.start()

await alice.connect(bob.addresses[0] ?? '')
const toCarol = await alice.connect(carol.addresses[0] ?? '')
const results = await alice.broadcast('hello, everyone')
console.log(`broadcast acknowledged by ${results.filter((r) => r.ok).length} of ${results.length}`)

/** Runs `call`, printing how it ended. @param {string} what @param {() => Promise<unknown>} call */
async function attempt(what, call) {
  try {
    await call()
    console.log(`${what}: done`)
  } catch (err) {
    if (!(err instanceof PeerError)) throw err
    console.log(`${what}: ${err.code}`)
  }
}

// Carol's cable is cut: her connections die at once, and new dials to her are refused.
const lost = new Promise((resolve) => alice.once('peer:disconnect', resolve))
network.partition('alice', 'carol')
network.dropConnections('carol')
const { peer: gone, reason } = /** @type {import('@parley/core').DisconnectEvent} */ (await lost)
console.log(`alice lost ${gone.name}: ${reason}`)
await attempt('send to carol', () => alice.send(toCarol.id, 'still there?'))
await attempt('dial carol', () => alice.connect(carol.addresses[0] ?? ''))

// Healed: the same dial gets through.
network.heal()
await attempt('dial carol after heal', () => alice.connect(carol.addresses[0] ?? ''))

for (const p of [alice, bob, carol]) await p.stop()
console.log(`open connections left: ${network.connections}`)
