import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { FilesError, FilesMessage, IncomingOffer, OutgoingTransfer } from '../src/index.js'
import { Reason } from '../src/index.js'
import {
  link,
  linkRaw,
  memoryNet,
  type Node,
  nextOffer,
  randomFile,
  rawFiles,
  tempDir,
  waitUntil,
} from './helpers.js'

type OfferMsg = Extract<FilesMessage, { type: 'OFFER' }>

const offerOf = (name: string, root: Buffer = randomBytes(32)): OfferMsg => ({
  type: 'OFFER',
  id: randomBytes(16),
  root,
  size: 1_000,
  chunkSize: 256 * 1024,
  name,
})

/** The BUSY declines a raw peer received, by transfer id (hex). */
const busyIds = (received: FilesMessage[]): string[] =>
  received
    .filter((m) => m.type === 'DECLINE' && m.reason === Reason.BUSY)
    .map((m) => Buffer.from(m.id).toString('hex'))

const hex = (id: Uint8Array) => Buffer.from(id).toString('hex')

/** Offers waiting at `node` that `peerId` is a source of. */
const heldBy = (node: Node, peerId: string) =>
  node.files.offers().filter((o) => o.sources.some((s) => s.id === peerId))

/** Offers a small file; resolves with what the receiver's user sees first: the offer, or the refusal. */
async function offerSeen(from: Node, to: Node, name: string): Promise<{ seen: string; t: OutgoingTransfer }> {
  const path = await randomFile(join(await tempDir(), name), 100)
  const shown = nextOffer(to.files)
  const t = await from.files.offer(to.peer.id, path)
  const seen = await Promise.race([
    shown.then((o) => `offer from ${o.from.name}`),
    t.finished.then(
      () => 'done',
      (e: FilesError) => e.code,
    ),
  ])
  return { seen, t }
}

describe('a full inbox is shared between senders', () => {
  it('offers from senders that left are pushed out first, so throwaway identities cannot push out one waiting for an answer', async () => {
    const net = memoryNet()
    const bob = await net.node('bob', { maxOffers: 4 })
    const alice = await net.node('alice')
    await link(alice, bob)
    const { seen, t } = await offerSeen(alice, bob, 'honest.bin')
    expect(seen).toBe('offer from alice')
    // Twelve identities, one after the other, each offering once and leaving: the inbox is full after three.
    for (let k = 0; k < 12; k++) {
      const raw = rawFiles()
      const node = await net.node(`throwaway${k}`, {}, {}, raw.wrap)
      await linkRaw(node, bob)
      raw.send(bob.peer.id, offerOf(`spam${k}`))
      await waitUntil(() => heldBy(bob, node.peer.id).length === 1 || raw.received.length > 0)
      await node.peer.stop()
      await waitUntil(() => !bob.files.peers().some((p) => p.id === node.peer.id))
    }
    expect(bob.files.offers().map((o) => o.name)).toContain('honest.bin')
    expect(bob.files.offers()).toHaveLength(4)
    expect(t.status).toBe('offered')
  })

  it('four identities flooding 16 offers each hold 8 each, and another peer is still heard', async () => {
    const net = memoryNet()
    const bob = await net.node('bob')
    const flooders: { raw: ReturnType<typeof rawFiles>; node: Node }[] = []
    for (let k = 0; k < 4; k++) {
      const raw = rawFiles()
      const node = await net.node(`flood${k}`, {}, {}, raw.wrap)
      await linkRaw(node, bob)
      for (let i = 0; i < 16; i++) raw.send(bob.peer.id, offerOf(`spam${k}-${i}`))
      flooders.push({ raw, node })
    }
    // Every offer is either kept or declined.
    await waitUntil(
      () => bob.files.offers().length + flooders.reduce((n, f) => n + f.raw.received.length, 0) === 64,
    )
    for (const f of flooders) {
      expect(heldBy(bob, f.node.peer.id)).toHaveLength(8)
      expect(busyIds(f.raw.received)).toHaveLength(8)
    }
    const alice = await net.node('alice')
    await link(alice, bob)
    expect((await offerSeen(alice, bob, 'a.bin')).seen).toBe('offer from alice')
  })

  it('when 8 identities fill it, a new sender pushes out the oldest offer, announced as expired', async () => {
    const net = memoryNet()
    const bob = await net.node('bob')
    const expired: IncomingOffer[] = []
    bob.files.on('offer:expired', (o) => expired.push(o))
    const flooders = []
    for (let k = 0; k < 8; k++) {
      const raw = rawFiles()
      const node = await net.node(`flood${k}`, {}, {}, raw.wrap)
      await linkRaw(node, bob)
      const sent = Array.from({ length: 8 }, (_, i) => offerOf(`spam${k}-${i}`))
      for (const o of sent) raw.send(bob.peer.id, o)
      // One sender at a time, so the first flooder's offers are the oldest.
      await waitUntil(() => heldBy(bob, node.peer.id).length === 8)
      flooders.push({ raw, node, sent })
    }
    expect(bob.files.offers()).toHaveLength(64)

    const alice = await net.node('alice')
    await link(alice, bob)
    expect((await offerSeen(alice, bob, 'a.bin')).seen).toBe('offer from alice')
    // Every flooder held 8: the oldest of all went, its sender was told BUSY.
    const first = flooders[0]!
    expect(expired.map((o) => o.name)).toEqual(['spam0-0'])
    expect(expired[0]!.status).toBe('expired')
    await waitUntil(() => first.raw.received.length === 1)
    expect(busyIds(first.raw.received)).toEqual([hex(first.sent[0]!.id)])
    expect(bob.files.offers()).toHaveLength(64)
    expect(heldBy(bob, first.node.peer.id).map((o) => o.name)).not.toContain('spam0-0')

    // A flooder holding the most cannot push out anyone else: its offer is refused as before.
    const second = flooders[1]!
    const more = offerOf('spam1-more')
    second.raw.send(bob.peer.id, more)
    await waitUntil(() => second.raw.received.length === 1)
    expect(busyIds(second.raw.received)).toEqual([hex(more.id)])
    expect(expired).toHaveLength(1)
    expect(heldBy(bob, second.node.peer.id)).toHaveLength(8)
  })

  it("the peer holding the most gives way, not the oldest offer; the evicted sender's transfer fails BUSY", async () => {
    const net = memoryNet()
    const bob = await net.node('bob', { maxOffers: 6, maxOffersPerPeer: 4 })
    const eve = await net.node('eve')
    const mallory = await net.node('mallory')
    const alice = await net.node('alice')
    for (const n of [eve, mallory, alice]) await link(n, bob)
    const expired: string[] = []
    bob.files.on('offer:expired', (o) => expired.push(o.name))
    for (let i = 0; i < 2; i++) expect((await offerSeen(eve, bob, `eve${i}.bin`)).seen).toBe('offer from eve')
    const fromMallory: OutgoingTransfer[] = []
    for (let i = 0; i < 4; i++) {
      const { seen, t } = await offerSeen(mallory, bob, `mallory${i}.bin`)
      expect(seen).toBe('offer from mallory')
      fromMallory.push(t)
    }
    expect(bob.files.offers()).toHaveLength(6)

    expect((await offerSeen(alice, bob, 'alice.bin')).seen).toBe('offer from alice')
    expect(expired).toEqual(['mallory0.bin'])
    await expect(fromMallory[0]!.finished).rejects.toMatchObject({ code: 'BUSY' })
    expect(heldBy(bob, eve.peer.id)).toHaveLength(2)

    // Mallory (3) still holds the most: its next offer is refused, nothing else goes.
    expect((await offerSeen(mallory, bob, 'mallory4.bin')).seen).toBe('BUSY')
    expect(expired).toEqual(['mallory0.bin'])
    // Eve (2) holds fewer: its offer pushes out Mallory's oldest left.
    expect((await offerSeen(eve, bob, 'eve2.bin')).seen).toBe('offer from eve')
    expect(expired).toEqual(['mallory0.bin', 'mallory1.bin'])
    await expect(fromMallory[1]!.finished).rejects.toMatchObject({ code: 'BUSY' })
    expect(
      bob.files
        .offers()
        .map((o) => o.name)
        .sort(),
    ).toEqual(['alice.bin', 'eve0.bin', 'eve1.bin', 'eve2.bin', 'mallory2.bin', 'mallory3.bin'].sort())
  })

  it('an offer another, smaller sender also makes is kept; a download is never pushed out', async () => {
    const dir = await tempDir()
    const net = memoryNet()
    const bob = await net.node('bob', { maxOffers: 4, downloads: dir })
    const mallory = rawFiles()
    const m = await net.node('mallory', {}, {}, mallory.wrap)
    const carol = rawFiles()
    const c = await net.node('carol', {}, {}, carol.wrap)
    await linkRaw(m, bob)
    await linkRaw(c, bob)
    const expired: string[] = []
    bob.files.on('offer:expired', (o) => expired.push(o.name))

    // Mallory's oldest offer becomes a download; her next one is also offered by Carol.
    const downloaded = offerOf('downloaded')
    const started = new Promise<void>((resolve) =>
      bob.files.once('offer', (o) => o.accept().then(() => resolve())),
    )
    mallory.send(bob.peer.id, downloaded)
    await started
    const shared = offerOf('shared')
    mallory.send(bob.peer.id, shared)
    await waitUntil(() => bob.files.offers().length === 1)
    carol.send(bob.peer.id, { ...shared, id: randomBytes(16) })
    await waitUntil(() => bob.files.offers()[0]?.sourceCount === 2)
    const rest = ['m2', 'm3', 'm4'].map((name) => offerOf(name))
    for (const o of rest) mallory.send(bob.peer.id, o)
    await waitUntil(() => bob.files.offers().length === 4)

    const alice = await net.node('alice')
    await link(alice, bob)
    expect((await offerSeen(alice, bob, 'a.bin')).seen).toBe('offer from alice')
    expect(expired).toEqual(['m2'])
    await waitUntil(() => busyIds(mallory.received).length === 1)
    expect(busyIds(mallory.received)).toEqual([hex(rest[0]!.id)])
    expect(busyIds(carol.received)).toEqual([])
    expect(bob.files.offers().find((o) => o.name === 'shared')?.sourceCount).toBe(2)
    expect(bob.files.downloads().map((d) => d.name)).toEqual(['downloaded'])
    expect(mallory.received.some((msg) => msg.type === 'CANCEL')).toBe(false)
  })
})
