import { describe, expect, it } from 'vitest'
import type { PeerInit, ReceivedMessage } from '../src/peer-types.js'
import { connectedPair } from './fixtures/memory-peer.js'

// sendMany(): one promise for a batch of messages, end to end over the Noise channel in memory.

async function pair(init: Partial<PeerInit> = {}) {
  const { alice, bob } = await connectedPair(init)
  const received: ReceivedMessage[] = []
  bob.on('message', (m) => received.push(m))
  return { alice, bob, received }
}

describe('sendMany', () => {
  it('delivers a batch larger than the send window once each, in order, and resolves once all are acknowledged', async () => {
    const { alice, bob, received } = await pair({ inFlight: { messages: 100 } })
    const texts = Array.from({ length: 2_500 }, (_, i) => `m${i}`)
    const result = await alice.sendMany(bob.id, texts)
    expect(result).toMatchObject({ peerId: bob.id, count: 2_500 })
    expect(received.map((m) => m.text)).toEqual(texts)
    expect(result.firstId).toBe(received[0]!.id)
    expect(result.lastId).toBe(received.at(-1)!.id)
    // The window is free again: a plain send goes through.
    await alice.send(bob.id, 'after')
    expect(received.at(-1)!.text).toBe('after')
  })

  it('refuses a batch holding a text over the limit before sending any of it', async () => {
    const { alice, bob, received } = await pair()
    const texts = ['fine', 'x'.repeat(70_000), 'also fine']
    await expect(alice.sendMany(bob.id, texts)).rejects.toMatchObject({ code: 'MESSAGE_TOO_LONG' })
    await alice.send(bob.id, 'probe')
    expect(received.map((m) => m.text)).toEqual(['probe'])
  })

  it('needs a session: a target that is not connected fails with NOT_CONNECTED', async () => {
    const { alice } = await pair()
    await expect(alice.sendMany('ffffffffffffffff', ['a'])).rejects.toMatchObject({ code: 'NOT_CONNECTED' })
  })

  it('fails with the session when the receiver goes away mid-batch', async () => {
    const { alice, bob, received } = await pair({ inFlight: { messages: 10 }, reconnect: false })
    let destroyed = false
    bob.on('message', () => {
      if (received.length === 5 && !destroyed) {
        destroyed = true
        bob.destroy()
      }
    })
    const texts = Array.from({ length: 200 }, (_, i) => `m${i}`)
    const err = await alice.sendMany(bob.id, texts).catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'PeerError' })
    expect(received.length).toBeLessThan(200)
  })

  it('a batch waiting for room does not count against the waiting senders: a send() still gets in line', async () => {
    const { alice, bob, received } = await pair({ inFlight: { messages: 10, waiting: 5 } })
    const batch = alice.sendMany(
      bob.id,
      Array.from({ length: 100 }, (_, i) => `m${i}`),
    )
    const single = alice.send(bob.id, 'single')
    await Promise.all([batch, single])
    expect(received.at(-1)!.text).toBe('single')
    expect(received).toHaveLength(101)
  })

  it('a batch called while sends wait goes after them, and its texts stay together before later sends', async () => {
    const { alice, bob, received } = await pair({ inFlight: { messages: 10 } })
    const before = Array.from({ length: 15 }, (_, i) => alice.send(bob.id, `before ${i}`))
    const texts = Array.from({ length: 30 }, (_, i) => `batch ${i}`)
    const batch = alice.sendMany(bob.id, texts)
    const after = alice.send(bob.id, 'after')
    const [result] = await Promise.all([batch, after, ...before])
    expect(received.map((m) => m.text)).toEqual([
      ...Array.from({ length: 15 }, (_, i) => `before ${i}`),
      ...texts,
      'after',
    ])
    expect(result.firstId).toBe(received[15]!.id)
    expect(result.lastId).toBe(received[44]!.id)
  })

  it('sends the texts as they were when it was called, whatever the caller does with its array after', async () => {
    const { alice, bob, received } = await pair({ inFlight: { messages: 10 } })
    const texts = Array.from({ length: 50 }, (_, i) => `m${i}`)
    const batch = alice.sendMany(bob.id, texts)
    texts.fill('changed')
    await batch
    expect(received.map((m) => m.text)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`))
  })

  it('an empty batch resolves at once with a count of 0', async () => {
    const { alice, bob } = await pair()
    expect(await alice.sendMany(bob.id, [])).toMatchObject({ count: 0, peerId: bob.id })
  })
})
