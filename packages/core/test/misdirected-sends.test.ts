import { once } from 'node:events'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { fingerprint } from '../src/identity.js'
import type { Peer } from '../src/peer.js'
import type { ReceivedMessage } from '../src/peer-types.js'
import { plaintextUpgrader } from '../src/secure/plaintext.js'
import { memoryNetwork } from '../src/transports/memory.js'
import { memoryPeer } from './fixtures/memory-peer.js'

// A send addressed to one peer must reach that peer or fail: never whoever else calls itself by its
// id, nor whoever answers at an address heard for it.

const plain = { upgrader: plaintextUpgrader() }

function inbox(peer: Peer): ReceivedMessage[] {
  const got: ReceivedMessage[] = []
  peer.on('message', (m) => got.push(m))
  return got
}

/**
 * `me` heard of alice from a hub only (her id at her address); alice left, and `other` listens at her
 * address now (a port reused, or a peer-exchange record that lied).
 */
async function squattedAddress() {
  const network = memoryNetwork()
  const me = memoryPeer(network, 'me', plain)
  const hub = memoryPeer(network, 'hub', plain)
  const alice = memoryPeer(network, 'alice', plain)
  for (const p of [me, hub, alice]) await p.start()
  await alice.connect(hub.addresses[0]!)
  await me.connect(hub.addresses[0]!)
  await me.queryPeers(hub.id)
  const address = alice.addresses[0]!
  await alice.stop()
  const other = memoryPeer(network, 'other', { ...plain, listen: address })
  await other.start()
  expect(other.addresses).toEqual([address])
  return { me, alice, other, address }
}

describe('a send to a peer by id', () => {
  it('never reaches a peer whose display name is that id, its prefix or its fingerprint', async () => {
    const network = memoryNetwork()
    const me = memoryPeer(network, 'me', plain)
    const alice = memoryPeer(network, 'alice', plain)
    await me.start()
    await alice.start()
    await me.connect(alice.addresses[0]!)
    const aliceId = alice.id
    await alice.stop()
    for (const name of [aliceId, aliceId.slice(0, 8), fingerprint(aliceId)]) {
      const mallory = memoryPeer(network, `m${name.length}`, { ...plain, name })
      await mallory.start()
      await mallory.connect(me.addresses[0]!)
      const atMallory = inbox(mallory)
      for (const target of [aliceId, aliceId.slice(0, 8), fingerprint(aliceId)]) {
        await expect(me.send(target, 'for alice only')).rejects.toMatchObject({ code: 'NOT_CONNECTED' })
      }
      expect(atMallory).toEqual([])
      await mallory.stop()
    }
  })

  it('a name written like an id means no one, even when no peer has that id', async () => {
    const network = memoryNetwork()
    const me = memoryPeer(network, 'me', plain)
    const mallory = memoryPeer(network, 'mallory', { ...plain, name: 'deadbeefcafe0123' })
    await me.start()
    await mallory.start()
    await mallory.connect(me.addresses[0]!)
    await expect(me.send('deadbeefcafe0123', 'hi')).rejects.toMatchObject({ code: 'NOT_CONNECTED' })
    // Its id still names it.
    expect((await me.send(mallory.id, 'hi')).peerId).toBe(mallory.id)
  })

  it('fails with WRONG_PEER when another peer answers at the address heard for it, and sends nothing there', async () => {
    const { me, alice, other: squatter } = await squattedAddress()
    const atSquatter = inbox(squatter)
    await expect(me.send(alice.id, 'for alice only')).rejects.toMatchObject({ code: 'WRONG_PEER' })
    const results = await me.connectToActive({ rounds: 0 })
    expect(results.find((r) => r.peerId === alice.id)).toMatchObject({
      ok: false,
      status: 'failed',
      error: { code: 'WRONG_PEER' },
    })
    expect(atSquatter).toEqual([])
    // No session was kept with the squatter on alice's account.
    expect(me.peers().connected.map((p) => p.id)).not.toContain(squatter.id)
  })

  it("a dial led by another peer's list never makes a name mean the key it reached", async () => {
    const network = memoryNetwork()
    const me = memoryPeer(network, 'me', plain)
    const alice = memoryPeer(network, 'alice', plain)
    const hub = memoryPeer(network, 'hub', plain)
    const impostor = memoryPeer(network, 'imp', { ...plain, name: 'alice' })
    for (const p of [me, alice, hub, impostor]) await p.start()
    // alice dialed in first: the name alice is hers.
    await alice.connect(me.addresses[0]!)
    await expect(me.send('alice', 'one')).resolves.toMatchObject({ peerId: alice.id })
    // The hub's list names the impostor "alice", and connect-to-active dials it.
    await impostor.connect(hub.addresses[0]!)
    await me.connect(hub.addresses[0]!)
    await me.queryPeers(hub.id)
    await me.connectToActive({ rounds: 0 })
    expect(me.peers().connected.map((p) => p.id)).toContain(impostor.id)
    const atImpostor = inbox(impostor)
    // Two keys are known by the name now: it means neither, so nothing goes to the impostor by it.
    await expect(me.send('alice', 'two')).rejects.toMatchObject({ code: 'NOT_CONNECTED' })
    expect(atImpostor).toEqual([])
  })

  it('a known peer whose saved address answers with a new key is a key change for the user, not WRONG_PEER', async () => {
    const network = memoryNetwork()
    const me = memoryPeer(network, 'me', { ...plain, reconnect: false })
    const alice = memoryPeer(network, 'alice', plain)
    await me.start()
    await alice.start()
    // Dialed by the user: alice's key is saved for her address.
    await me.connect(alice.addresses[0]!)
    const address = alice.addresses[0]!
    const aliceGone = once(me, 'peer:disconnect')
    alice.destroy()
    await aliceGone
    expect(me.peers().connected).toEqual([])
    const reinstalled = memoryPeer(network, 'alice2', { ...plain, name: 'alice', listen: address })
    await reinstalled.start()
    await expect(me.send(alice.id, 'hi')).rejects.toMatchObject({ code: 'KEY_CHANGED' })
    expect(me.keyChanges()).toEqual([
      expect.objectContaining({ address, expected: alice.id, actual: reinstalled.id, direction: 'outbound' }),
    ])
  })

  it('a peer being reconnected whose address answers with a new key: said once, and no more dials', async () => {
    const network = memoryNetwork()
    const me = memoryPeer(network, 'me', {
      ...plain,
      reconnect: { initialDelay: 5, maxDelay: 10, maxAttempts: 50 },
    })
    const alice = memoryPeer(network, 'alice', plain)
    await me.start()
    await alice.start()
    await me.connect(alice.addresses[0]!)
    const address = alice.addresses[0]!
    const errors: { code: string }[] = []
    const told = new Promise<void>((resolve) =>
      me.on('error', (err) => {
        errors.push(err)
        resolve()
      }),
    )
    const other = memoryPeer(network, 'alice2', { ...plain, name: 'alice', listen: address })
    alice.destroy()
    await other.start()
    // Lost, then dialed again: the new key answers, and the user is told (the loss was said already).
    await told
    expect(errors).toEqual([expect.objectContaining({ code: 'KEY_CHANGED' })])
    expect(me.keyChanges()).toEqual([
      expect.objectContaining({ address, expected: alice.id, actual: other.id }),
    ])
    // Each attempt would come within 10 ms and see the new key again (the change's seenAt); none does.
    const seenAt = me.keyChanges()[0]!.seenAt
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    onTestFinished(() => void vi.useRealTimers())
    await vi.advanceTimersByTimeAsync(60_000)
    expect(me.keyChanges()[0]!.seenAt).toBe(seenAt)
    expect(errors.filter((e) => e.code === 'KEY_CHANGED')).toHaveLength(1)
    expect(me.peers().connected).toEqual([])
  })

  it('a dial expecting a key is not shared with a plain connect to the same address', async () => {
    const { me, alice, other, address } = await squattedAddress()
    // The send dials alice's heard-of address expecting her; the user's connect, in the same tick, expects no one.
    const [bySend, byConnect] = await Promise.allSettled([me.send(alice.id, 'x'), me.connect(address)])
    expect(bySend).toMatchObject({ status: 'rejected', reason: { code: 'WRONG_PEER' } })
    expect(byConnect).toMatchObject({ status: 'fulfilled', value: { id: other.id } })
  })
})
