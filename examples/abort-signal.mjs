// @ts-check
// Cancelling with AbortSignal: every async call of a peer takes { signal }, and a cancelled call
// rejects with a PeerError whose code is ABORTED. Run: node examples/abort-signal.mjs (after `pnpm build`)
import { createPeer, memoryNetwork, memoryTransport, PeerError } from '@parley/core'

const network = memoryNetwork()
const alice = createPeer({ transport: memoryTransport(network), name: 'alice', listen: 'alice:0' })
const bob = createPeer({ transport: memoryTransport(network), name: 'bob', listen: 'bob:0' })
await alice.start()
await bob.start()

/** Runs `call`, printing how it ended. @param {string} what @param {() => Promise<unknown>} call */
async function attempt(what, call) {
  try {
    await call()
    console.log(`${what}: done`)
  } catch (err) {
    if (!(err instanceof PeerError)) throw err
    // A cancelled dial is reported as a failed dial, with the abort as its cause.
    const cause = err.cause instanceof Error && 'code' in err.cause ? ` (cause: ${err.cause.code})` : ''
    console.log(`${what}: ${err.code}${cause}`)
  }
}

// A slow network: every byte takes 5 s to arrive, so nothing below can finish on its own.
network.setDelay(5_000)

// A deadline: give up on the handshake after 100 ms.
await attempt('connect with a 100 ms deadline', () =>
  alice.connect(bob.addresses[0] ?? '', { signal: AbortSignal.timeout(100) }),
)

// A user's cancel button: abort a send that waits for its acknowledgement.
network.setDelay(0)
const info = await alice.connect(bob.addresses[0] ?? '')
network.setDelay(5_000)
const cancel = new AbortController()
const sending = attempt('send cancelled by the user', () =>
  alice.send(info.id, 'this one is cancelled', { signal: cancel.signal }),
)
cancel.abort()
await sending

// A signal that has already fired stops the call before it starts.
await attempt('send with an aborted signal', () =>
  alice.send(info.id, 'never sent', { signal: AbortSignal.abort() }),
)

alice.destroy()
bob.destroy()
