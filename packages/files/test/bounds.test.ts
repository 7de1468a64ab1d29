import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, readdir, statfs, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { DisconnectEvent } from '@parley/core'
import { describe, expect, it } from 'vitest'
import { type Download, type FilesMessage, type IncomingOffer, Reason } from '../src/index.js'
import {
  flooding,
  link,
  linkRaw,
  memoryNet,
  nextOffer,
  randomFile,
  rawFiles,
  stalling,
  tempDir,
  waitUntil,
} from './helpers.js'

const KiB = 1024
const MiB = 1024 * KiB

describe('cancelling and bounds', () => {
  it('a receiver that cancels removes its part file, and the sender learns it', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'big.bin'), 4 * MiB)
    const net = memoryNet()
    const alice = await net.node('alice')
    const bob = await net.node('bob', { downloads: join(dir, 'in'), autoAccept: true, progressInterval: 0 })
    await link(alice, bob)
    const started = once(bob.files, 'download')
    const transfer = await alice.files.offer(bob.peer.id, src)
    const [download] = (await started) as [Download]
    await once(download, 'progress')
    await download.cancel()
    await expect(download.finished).rejects.toMatchObject({ code: 'CANCELLED' })
    await expect(transfer.finished).rejects.toMatchObject({ code: 'CANCELLED' })
    expect(await readdir(join(dir, 'in'))).toEqual([])
  })

  it('a sender that aborts its offer withdraws it', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'a.bin'), 10 * KiB)
    const net = memoryNet()
    const alice = await net.node('alice')
    const bob = await net.node('bob')
    await link(alice, bob)
    const offered = nextOffer(bob.files)
    const ac = new AbortController()
    const transfer = await alice.files.offer(bob.peer.id, src, { signal: ac.signal })
    const offer = await offered
    const withdrawn = once(bob.files, 'offer:withdrawn')
    ac.abort()
    await withdrawn
    expect(offer.status).toBe('withdrawn')
    await expect(transfer.finished).rejects.toMatchObject({ code: 'CANCELLED' })
  })

  it('a download whose every sender cancelled it fails as CANCELLED, not as out of sources', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'a.bin'), 256 * KiB)
    const net = memoryNet()
    const alice = await net.node('alice')
    const bob = await net.node('bob', { downloads: join(dir, 'in') })
    await link(alice, bob)
    const offered = nextOffer(bob.files)
    const transfer = await alice.files.offer(bob.peer.id, src)
    // The sender stops as soon as the receiver has said yes: before any chunk.
    transfer.once('accepted', () => transfer.cancel())
    const download = await (await offered).accept()
    await expect(download.finished).rejects.toMatchObject({ code: 'CANCELLED' })
  })

  it('offers past the per-peer bound are declined as BUSY', async () => {
    const dir = await tempDir()
    const net = memoryNet()
    const alice = await net.node('alice')
    const bob = await net.node('bob', { maxOffersPerPeer: 2 })
    await link(alice, bob)
    const transfers = []
    for (let i = 0; i < 3; i++) {
      const src = await randomFile(join(dir, `f${i}`), 1 + i)
      transfers.push(await alice.files.offer(bob.peer.id, src))
    }
    await expect(transfers[2]!.finished).rejects.toMatchObject({ code: 'BUSY' })
    expect(bob.files.offers()).toHaveLength(2)
  })

  it('a file changed on the sender after the offer fails both sides instead of delivering a mix', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'a.bin'), 1 * MiB)
    const net = memoryNet()
    const alice = await net.node('alice')
    const bob = await net.node('bob', { downloads: join(dir, 'in') })
    await link(alice, bob)
    const offered = nextOffer(bob.files)
    const transfer = await alice.files.offer(bob.peer.id, src)
    const offer = await offered
    await writeFile(src, 'different now')
    const download = await offer.accept()
    await expect(transfer.finished).rejects.toMatchObject({ code: 'FILE_CHANGED' })
    await expect(download.finished).rejects.toMatchObject({ code: 'NO_SOURCES' })
  })

  it('a receiver asking for more than 64 chunks at once is cut off as a violation', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'a.bin'), 4 * MiB)
    const net = memoryNet()
    const alice = await net.node('alice')
    const greedy = await net.node(
      'greedy',
      { downloads: join(dir, 'in'), autoAccept: true },
      {},
      flooding(40),
    )
    await link(alice, greedy)
    const errors: { code: string; message: string }[] = []
    alice.peer.on('error', (e) => errors.push(e))
    // Not events.once: it would reject on the 'error' event this test waits for.
    const gone = new Promise((resolve) => alice.peer.on('peer:disconnect', resolve))
    const transfer = await alice.files.offer(greedy.peer.id, src)
    await gone
    expect(errors.map((e) => e.code)).toEqual(['REJECTED'])
    expect(errors[0]!.message).toMatch(/more than 64 requests queued/)
    expect(transfer.status).toBe('accepted')
  })

  it('offering to a peer that is not connected fails with NOT_CONNECTED', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'a.bin'), 10)
    const net = memoryNet()
    const alice = await net.node('alice')
    await expect(alice.files.offer('ab'.repeat(32), src)).rejects.toMatchObject({ code: 'NOT_CONNECTED' })
  })

  it('an aborted offer fails with CANCELLED', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'a.bin'), 10 * KiB)
    const net = memoryNet()
    const alice = await net.node('alice')
    const bob = await net.node('bob')
    await link(alice, bob)
    const ac = new AbortController()
    ac.abort()
    await expect(alice.files.offer(bob.peer.id, src, { signal: ac.signal })).rejects.toMatchObject({
      code: 'CANCELLED',
    })
    expect(bob.files.offers()).toEqual([])
  })

  it('accept() takes a signal: aborting cancels the download, removes its part file, and tells the sender', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'big.bin'), 4 * MiB)
    const net = memoryNet()
    const alice = await net.node('alice')
    const bob = await net.node('bob', { downloads: join(dir, 'in'), progressInterval: 0 })
    await link(alice, bob)
    const offered = nextOffer(bob.files)
    const transfer = await alice.files.offer(bob.peer.id, src)
    const offer = await offered
    const aborted = new AbortController()
    aborted.abort()
    await expect(offer.accept({ signal: aborted.signal })).rejects.toMatchObject({ code: 'CANCELLED' })
    expect(offer.status).toBe('pending')

    const ac = new AbortController()
    const download = await offer.accept({ signal: ac.signal })
    await once(download, 'progress')
    ac.abort()
    await expect(download.finished).rejects.toMatchObject({ code: 'CANCELLED' })
    await expect(transfer.finished).rejects.toMatchObject({ code: 'CANCELLED' })
    await download.whenClosed()
    expect(await readdir(join(dir, 'in'))).toEqual([])
  })
})

describe('hostile offers', () => {
  const offerOf = (root: Buffer, size = 1_000, chunkSize = 256 * KiB): FilesMessage => ({
    type: 'OFFER',
    id: randomBytes(16),
    root,
    size,
    chunkSize,
    name: 'x.bin',
  })

  it.each<[string, FilesMessage]>([
    ['CHUNKs', { type: 'CHUNK', id: randomBytes(16), index: 0, offset: 0, data: randomBytes(16) }],
    ['HASHES', { type: 'HASHES', id: randomBytes(16), start: 0, hashes: randomBytes(32) }],
  ])('%s nobody asked for cost the sender its budget: a flood is cut off', async (_name, junk) => {
    const net = memoryNet()
    const mallory = rawFiles()
    const m = await net.node('mallory', {}, {}, mallory.wrap)
    const bob = await net.node('bob', {}, { rateLimit: { perSecond: 1, burst: 3 } })
    await linkRaw(m, bob)
    // (The violation is also reported as the peer's `error` event, which `once` would throw.)
    const gone = new Promise<DisconnectEvent>((resolve) => bob.peer.on('peer:disconnect', resolve))
    for (let i = 0; i < 10; i++) mallory.send(bob.peer.id, junk)
    expect((await gone).reason).toBe('protocol-error')
  })

  it('a hash part sent again is no progress: it costs the budget, and a flood of it is cut off', async () => {
    const dir = await tempDir()
    const net = memoryNet()
    const mallory = rawFiles()
    const m = await net.node('mallory', {}, {}, mallory.wrap)
    const bob = await net.node(
      'bob',
      { downloads: join(dir, 'in'), autoAccept: true },
      { rateLimit: { perSecond: 1, burst: 3 } },
    )
    await linkRaw(m, bob)
    // 1,025 chunks: two parts of hashes, so the first alone does not complete the list.
    const offer = offerOf(randomBytes(32), 1_025 * 32 * KiB, 32 * KiB)
    mallory.send(bob.peer.id, offer)
    await waitUntil(() => mallory.received.some((msg) => msg.type === 'GET_HASHES'))
    const gone = new Promise<DisconnectEvent>((resolve) => bob.peer.on('peer:disconnect', resolve))
    const part: FilesMessage = { type: 'HASHES', id: offer.id, start: 0, hashes: randomBytes(1_024 * 32) }
    for (let i = 0; i < 10; i++) mallory.send(bob.peer.id, part)
    expect((await gone).reason).toBe('protocol-error')
  })

  it('an offer flood keeps at most maxOffersPerPeer waiting, and the rest are declined as BUSY', async () => {
    const net = memoryNet()
    const mallory = rawFiles()
    const m = await net.node('mallory', {}, {}, mallory.wrap)
    const bob = await net.node('bob', {}, { rateLimit: false })
    await linkRaw(m, bob)
    let offers = 0
    bob.files.on('offer', () => offers++)
    for (let i = 0; i < 1_000; i++) mallory.send(bob.peer.id, offerOf(randomBytes(32)))
    await waitUntil(() => mallory.received.length === 1_000 - 8)
    expect(mallory.received.every((msg) => msg.type === 'DECLINE' && msg.reason === Reason.BUSY)).toBe(true)
    expect(bob.files.offers()).toHaveLength(8)
    expect(offers).toBe(8)
  })

  it('re-offering one root under ever new ids does not grow what the receiver keeps', async () => {
    const gc = (globalThis as { gc?: () => void }).gc
    if (!gc) throw new Error('run with --expose-gc (vitest.config.ts sets it)')
    const net = memoryNet()
    const mallory = rawFiles()
    const m = await net.node('mallory', {}, {}, mallory.wrap)
    const bob = await net.node('bob', {}, { rateLimit: false })
    await linkRaw(m, bob)
    const root = randomBytes(32)
    const first = offerOf(root)
    const offered = nextOffer(bob.files)
    mallory.send(bob.peer.id, first)
    const offer = await offered
    const flood = async (n: number) => {
      for (let i = 0; i < n; i++) {
        mallory.send(bob.peer.id, offerOf(root))
        if (i % 1_000 === 999) await new Promise((r) => setImmediate(r))
      }
      // A round trip: bob answers a request for an unknown transfer after handling every offer before it.
      const probe = randomBytes(16)
      mallory.send(bob.peer.id, { type: 'GET_HASHES', id: probe, start: 0, count: 1 })
      await waitUntil(() =>
        mallory.received.some((msg) => msg.type === 'CANCEL' && Buffer.from(msg.id).equals(probe)),
      )
    }
    await flood(2_000) // warm-up: code paths compiled, buffers allocated
    gc()
    const before = process.memoryUsage().heapUsed
    await flood(40_000)
    gc()
    const grown = process.memoryUsage().heapUsed - before
    // One key per peer and root: 40,000 kept keys would be several megabytes.
    expect(grown).toBeLessThan(1024 * KiB)
    expect(bob.files.offers()).toEqual([offer])
    expect(offer.sources).toHaveLength(1)
    // The first id no longer names the offer; a cancel of the latest one withdraws it.
    mallory.send(bob.peer.id, { type: 'CANCEL', id: first.id, reason: Reason.CANCELLED })
    // A request for an unknown transfer is answered: once it is, the cancel before it was handled.
    const probe = randomBytes(16)
    mallory.send(bob.peer.id, { type: 'GET_HASHES', id: probe, start: 0, count: 1 })
    await waitUntil(() =>
      mallory.received.some((msg) => msg.type === 'CANCEL' && Buffer.from(msg.id).equals(probe)),
    )
    expect(offer.status).toBe('pending')
    const withdrawn = once(bob.files, 'offer:withdrawn')
    const last = offerOf(root)
    mallory.send(bob.peer.id, last)
    mallory.send(bob.peer.id, { type: 'CANCEL', id: last.id, reason: Reason.CANCELLED })
    await withdrawn
    expect(bob.files.offers()).toEqual([])
  })

  it('an offer larger than the free space is declined with NO_SPACE, and nothing is created', async () => {
    const dir = await tempDir()
    // The largest file the protocol allows: 65,536 chunks of 16 MiB (1 TiB).
    const size = 2 ** 40
    const fs = await statfs(dir)
    const inbox = Number(fs.bavail) * Number(fs.bsize) < size ? join(dir, 'in') : '/dev/shm/parley-files-test'
    const net = memoryNet()
    const mallory = rawFiles()
    const m = await net.node('mallory', {}, {}, mallory.wrap)
    const bob = await net.node('bob', { downloads: inbox })
    await linkRaw(m, bob)
    const offered = nextOffer(bob.files)
    const msg = { ...offerOf(randomBytes(32), size), chunkSize: 16 * MiB }
    mallory.send(bob.peer.id, msg)
    const offer = await offered
    await expect(offer.accept()).rejects.toMatchObject({ code: 'NO_SPACE' })
    await waitUntil(() => mallory.received.length > 0)
    expect(mallory.received).toMatchObject([{ type: 'DECLINE', reason: Reason.NO_SPACE }])
    expect(Buffer.from(mallory.received[0]!.id).equals(msg.id)).toBe(true)
    expect(await readdir(inbox)).toEqual([])
  })

  it('autoAccept deciding by peer accepts a friend and asks about a stranger', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'a.bin'), 64 * KiB)
    const net = memoryNet()
    const alice = await net.node('alice')
    const mallory = await net.node('mallory')
    const friends = new Set([alice.identity.peerId])
    const bob = await net.node('bob', {
      downloads: join(dir, 'in'),
      autoAccept: (offer) => friends.has(offer.from.id),
    })
    await link(alice, bob)
    await link(mallory, bob)
    const started = once(bob.files, 'download')
    await alice.files.offer(bob.peer.id, src)
    const [download] = (await started) as [Download]
    await download.finished
    const offered = nextOffer(bob.files)
    const other = await randomFile(join(dir, 'b.bin'), 64 * KiB)
    await mallory.files.offer(bob.peer.id, other)
    const offer = await offered
    expect(offer.from.id).toBe(mallory.peer.id)
    expect(offer.status).toBe('pending')
    expect(bob.files.downloads()).toEqual([])
  })

  it('one peer feeds at most maxDownloadsPerPeer auto-accepted downloads; past it its offers are asked about', async () => {
    const dir = await tempDir()
    const net = memoryNet()
    // A source that never sends a chunk: its first download stays running.
    const sloth = await net.node('sloth', {}, {}, stalling())
    const bob = await net.node('bob', {
      downloads: join(dir, 'in'),
      autoAccept: true,
      maxDownloadsPerPeer: 1,
    })
    await link(sloth, bob)
    const started = once(bob.files, 'download')
    await sloth.files.offer(bob.peer.id, await randomFile(join(dir, 'a.bin'), 64 * KiB))
    await started
    const offered = nextOffer(bob.files)
    await sloth.files.offer(bob.peer.id, await randomFile(join(dir, 'b.bin'), 64 * KiB))
    expect((await offered).status).toBe('pending')
    expect(bob.files.downloads()).toHaveLength(1)
  })

  it('a burst of offers cannot pass maxDownloads or maxDownloadsPerPeer', async () => {
    const dir = await tempDir()
    const net = memoryNet()
    const bob = await net.node('bob', {
      downloads: join(dir, 'in'),
      autoAccept: true,
      maxDownloadsPerPeer: 1,
      maxDownloads: 2,
    })
    // Three raw senders that never answer GET_HASHES: every accepted download stays running.
    const peers = await Promise.all(
      ['m1', 'm2', 'm3'].map(async (name) => {
        const raw = rawFiles()
        const node = await net.node(name, {}, {}, raw.wrap)
        await linkRaw(node, bob)
        return { raw, node }
      }),
    )
    const asked: string[] = []
    bob.files.on('offer', (o) => asked.push(o.from.id))
    let started = 0
    bob.files.on('download', () => started++)
    // Two offers from each, all sent before bob handles any.
    await Promise.all(
      peers.flatMap(({ raw }) => [0, 1].map(async () => raw.send(bob.peer.id, offerOf(randomBytes(32))))),
    )
    // Every offer is either accepted or waits for the user.
    await waitUntil(() => asked.length + started === 6)
    expect(started).toBe(2)
    const downloads = bob.files.downloads()
    expect(downloads).toHaveLength(2)
    for (const { node } of peers) {
      expect(downloads.filter((d) => d.sourceId(node.peer.id)).length).toBeLessThanOrEqual(1)
    }
  })

  it('concurrent accepts do not count the same free space twice', async () => {
    // Each offer fits the free space alone, two do not. At most 1 TiB per file (65,536 × 16 MiB): a
    // larger disk is swapped for /dev/shm.
    const chunkSize = 16 * MiB
    const freeIn = async (d: string) => {
      const fs = await statfs(d)
      return Number(fs.bavail) * Number(fs.bsize)
    }
    let dir = await tempDir()
    if ((await freeIn(dir)) * 0.6 > 2 ** 40) dir = await mkdtemp('/dev/shm/parley-files-test-')
    const inbox = join(dir, 'in')
    const size = Math.floor(((await freeIn(dir)) * 0.6) / chunkSize) * chunkSize
    const net = memoryNet()
    const mallory = rawFiles()
    const m = await net.node('mallory', {}, {}, mallory.wrap)
    const bob = await net.node('bob', { downloads: inbox, minFreeSpace: 0 })
    await linkRaw(m, bob)
    const offers: IncomingOffer[] = []
    bob.files.on('offer', (o) => offers.push(o))
    mallory.send(bob.peer.id, offerOf(randomBytes(32), size, chunkSize))
    mallory.send(bob.peer.id, offerOf(randomBytes(32), size, chunkSize))
    await waitUntil(() => offers.length === 2)
    const results = await Promise.allSettled(offers.map((o) => o.accept()))
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected'])
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'NO_SPACE' } })
    expect(await readdir(inbox)).toHaveLength(1)
    await bob.files.close()
  })

  it('an accept that would leave less than minFreeSpace free fails with NO_SPACE, and nothing is created', async () => {
    const freeIn = async (d: string) => {
      const fs = await statfs(d)
      return Number(fs.bavail) * Number(fs.bsize)
    }
    let dir = await tempDir()
    // At most 1 TiB per file: a larger disk is swapped for /dev/shm.
    if ((await freeIn(dir)) * 0.75 > 2 ** 40) dir = await mkdtemp('/dev/shm/parley-files-test-')
    const free = await freeIn(dir)
    const inbox = join(dir, 'in')
    const net = memoryNet()
    const mallory = rawFiles()
    const m = await net.node('mallory', {}, {}, mallory.wrap)
    // The file fits the free space, but would leave less than half of it free.
    const bob = await net.node('bob', { downloads: inbox, minFreeSpace: Math.floor(free / 2) })
    await linkRaw(m, bob)
    const offered = nextOffer(bob.files)
    mallory.send(bob.peer.id, offerOf(randomBytes(32), Math.floor(free * 0.75), 16 * MiB))
    const offer = await offered
    await expect(offer.accept()).rejects.toMatchObject({ code: 'NO_SPACE' })
    expect(await readdir(inbox)).toEqual([])
    await bob.files.close()
  })

  it('sources past maxSources are declined as BUSY', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'a.bin'), 64 * KiB)
    const net = memoryNet()
    const alice = await net.node('alice')
    const carol = await net.node('carol')
    const bob = await net.node('bob', { downloads: join(dir, 'in'), maxSources: 1 })
    await link(alice, bob)
    await link(carol, bob)
    const offered = nextOffer(bob.files)
    await alice.files.offer(bob.peer.id, src)
    const offer = await offered
    const second = await carol.files.offer(bob.peer.id, src)
    await expect(second.finished).rejects.toMatchObject({ code: 'BUSY' })
    expect(offer.sources.map((p) => p.name)).toEqual(['alice'])
  })

  it('chunks in flight stay within maxBuffered bytes over all sources, whatever the window', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'big.bin'), 12 * MiB)
    const net = memoryNet()
    // 1 MiB chunks from two sources, a window of 8 each: 16 MiB could be in flight without the bound.
    const alice = await net.node('alice', { chunkSize: MiB })
    const carol = await net.node('carol', { chunkSize: MiB })
    const bob = await net.node('bob', {
      downloads: join(dir, 'in'),
      window: 8,
      maxBuffered: 3 * MiB,
      progressInterval: 0,
    })
    await link(alice, bob)
    await link(carol, bob)
    const offered = nextOffer(bob.files)
    await alice.files.offer(bob.peer.id, src)
    const offer = await offered
    await carol.files.offer(bob.peer.id, src)
    await waitUntil(() => offer.sources.length === 2)
    const download = await offer.accept()
    let most = 0
    download.on('progress', () => {
      most = Math.max(most, download.chunksInFlight)
    })
    await download.finished
    expect(most).toBeGreaterThan(0)
    expect(most).toBeLessThanOrEqual(3)
  })
})
