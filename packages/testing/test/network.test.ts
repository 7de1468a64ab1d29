import { PeerError } from '@parley/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createTestNetwork } from '../src/index.js'

// The harness itself: a helper that hid a failed connection would let every test built on it pass
// without the peers ever talking.
describe('createTestNetwork().connect', () => {
  async function pair() {
    const net = await createTestNetwork({ size: 2, names: ['alice', 'bob'] })
    onTestFinished(() => net.stop())
    return [net, net.peer('alice'), net.peer('bob')] as const
  }

  it('resolves once both sides see each other', async () => {
    const [net, alice, bob] = await pair()
    await net.connect(alice, bob)
    expect(alice.peers().connected.map((c) => c.id)).toEqual([bob.id])
    expect(bob.peers().connected.map((c) => c.id)).toEqual([alice.id])
  })

  it("surfaces the dialer's own error", async () => {
    const [net, alice, bob] = await pair()
    await bob.stop()
    const err = await net.connect(alice, bob).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PeerError)
  })

  it('rejects when the other side never sees the connection', async () => {
    const [net, alice, bob] = await pair()
    // Bob's side never reports Alice (as if it dropped her after her handshake finished).
    const emit = bob.emit.bind(bob)
    bob.emit = ((event: string, ...args: unknown[]) =>
      event === 'peer:connect' ? false : emit(event as 'error', ...(args as [PeerError]))) as typeof bob.emit
    await expect(net.connect(alice, bob, { timeout: 200 })).rejects.toThrow(
      'alice connected to bob, but bob never saw alice connect',
    )
  })
})
