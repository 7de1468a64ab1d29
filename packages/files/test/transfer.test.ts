import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Download, FilesError, IncomingOffer, Progress } from '../src/index.js'
import {
  flooding,
  link,
  lying,
  lyingHashes,
  memoryNet,
  randomFile,
  sha256,
  stalling,
  tempDir,
  waitUntil,
} from './helpers.js'

const KiB = 1024
const MiB = 1024 * KiB

async function nextOffer(files: {
  once(e: 'offer', f: (o: IncomingOffer) => void): unknown
}): Promise<IncomingOffer> {
  return new Promise((resolve) => files.once('offer', resolve))
}

describe('offer and accept', () => {
  it('a file offered and accepted arrives identical, with progress on both sides', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'photo.jpg'), 3 * MiB + 12_345)
    const net = memoryNet()
    const alice = await net.node('alice', { progressInterval: 0 })
    const bob = await net.node('bob', { downloads: join(dir, 'in') })
    await link(alice, bob)

    const offered = nextOffer(bob.files)
    const transfer = await alice.files.offer(bob.peer.id, src)
    const offer = await offered
    expect(offer).toMatchObject({ name: 'photo.jpg', size: 3 * MiB + 12_345, root: transfer.root })
    expect(offer.from).toEqual({ id: alice.peer.id, name: 'alice' })

    const download = await offer.accept()
    const progress: Progress[] = []
    download.on('progress', (p) => progress.push(p))
    const sent: Progress[] = []
    transfer.on('progress', (p) => sent.push(p))
    const result = await download.finished
    await transfer.finished

    expect(result.path).toBe(join(dir, 'in', 'photo.jpg'))
    expect(await sha256(result.path)).toBe(await sha256(src))
    expect(progress.at(-1)).toMatchObject({ bytes: offer.size, size: offer.size })
    expect(progress.length).toBeGreaterThan(1)
    expect(sent.at(-1)).toMatchObject({ bytes: offer.size })
    // Nothing but the file is left in the download folder (no part file).
    expect(await readdir(join(dir, 'in'))).toEqual(['photo.jpg'])
  })

  it('an empty file arrives as an empty file', async () => {
    const dir = await tempDir()
    const src = join(dir, 'empty.txt')
    await writeFile(src, '')
    const net = memoryNet()
    const alice = await net.node('alice')
    const bob = await net.node('bob', { downloads: join(dir, 'in'), autoAccept: true })
    await link(alice, bob)
    const started = once(bob.files, 'download')
    const transfer = await alice.files.offer(bob.peer.id, src)
    const [download] = (await started) as [Download]
    const { path, size } = await download.finished
    await transfer.finished
    expect(size).toBe(0)
    expect(await readFile(path, 'utf8')).toBe('')
  })

  it('a declined offer fails the sender with DECLINED, and nothing is written', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'a.bin'), 100 * KiB)
    const net = memoryNet()
    const alice = await net.node('alice')
    const bob = await net.node('bob', { downloads: join(dir, 'in') })
    await link(alice, bob)
    const offered = nextOffer(bob.files)
    const transfer = await alice.files.offer(bob.peer.id, src)
    ;(await offered).decline()
    await expect(transfer.finished).rejects.toMatchObject({ code: 'DECLINED' })
    await expect(readdir(join(dir, 'in'))).rejects.toThrow()
    expect(bob.files.offers()).toEqual([])
  })

  it('an unanswered offer expires on both sides', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'a.bin'), 10 * KiB)
    const net = memoryNet()
    const alice = await net.node('alice', { offerTimeout: 5_000 })
    const bob = await net.node('bob', { offerTimeout: 150 })
    await link(alice, bob)
    const expired = once(bob.files, 'offer:expired')
    const transfer = await alice.files.offer(bob.peer.id, src)
    const [offer] = (await expired) as [IncomingOffer]
    expect(offer.status).toBe('expired')
    await expect(transfer.finished).rejects.toMatchObject({ code: 'EXPIRED' })
    await expect(offer.accept()).rejects.toMatchObject({ code: 'ANSWERED' })
  })

  it('is never accepted automatically unless configured; with autoAccept it lands in downloads', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'a.bin'), 64 * KiB)
    const net = memoryNet()
    const alice = await net.node('alice')
    const bob = await net.node('bob', { downloads: join(dir, 'bob') })
    const carol = await net.node('carol', { downloads: join(dir, 'carol'), autoAccept: true })
    await link(alice, bob)
    await link(alice, carol)
    const offered = nextOffer(bob.files)
    await alice.files.offer(bob.peer.id, src)
    const offer = await offered
    expect(offer.status).toBe('pending')
    expect(bob.files.downloads()).toEqual([])

    const started = once(carol.files, 'download')
    const toCarol = await alice.files.offer(carol.peer.id, src)
    const [download] = (await started) as [Download]
    await toCarol.finished
    expect(await sha256((await download.finished).path)).toBe(await sha256(src))
  })

  it('never overwrites: an existing name gets a number, and hostile names stay inside the folder', async () => {
    const dir = await tempDir()
    const inbox = join(dir, 'in')
    const src = await randomFile(join(dir, 'report.pdf'), 40 * KiB)
    const net = memoryNet()
    const alice = await net.node('alice')
    const bob = await net.node('bob', { downloads: inbox, autoAccept: true })
    await link(alice, bob)
    await randomFile(join(dir, 'keep'), 1)
    const { mkdir } = await import('node:fs/promises')
    await mkdir(inbox)
    await writeFile(join(inbox, 'report.pdf'), 'mine')

    const names = ['report.pdf', '../../escape.txt', '/etc/passwd', 'con', 'a\u0000b\nc.txt']
    const saved: string[] = []
    for (const name of names) {
      const started = once(bob.files, 'download')
      await alice.files.offer(bob.peer.id, src, { name })
      const [download] = (await started) as [Download]
      saved.push((await download.finished).path)
    }
    expect(saved).toEqual(
      ['report (1).pdf', 'escape.txt', 'passwd', '_con', 'a_b_c.txt'].map((n) => join(inbox, n)),
    )
    expect(await readFile(join(inbox, 'report.pdf'), 'utf8')).toBe('mine')
    expect((await readdir(dir)).sort()).toEqual(['in', 'keep', 'report.pdf'])
  })
})

describe('verification', () => {
  it('a corrupt chunk from a lying sender is detected, reported and fetched again', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'data.bin'), 2 * MiB)
    const net = memoryNet()
    let flipped = 0
    // Flips one byte of chunk 3, once.
    const alice = await net.node(
      'alice',
      {},
      {},
      lying((index) => index === 3 && flipped++ === 0),
    )
    const bob = await net.node('bob', { downloads: join(dir, 'in'), autoAccept: true })
    await link(alice, bob)
    const started = once(bob.files, 'download')
    const transfer = await alice.files.offer(bob.peer.id, src)
    const [download] = (await started) as [Download]
    const corrupt: { source: { id: string }; chunk: number }[] = []
    download.on('corrupt', (e) => corrupt.push(e))
    const { path } = await download.finished
    await transfer.finished
    expect(corrupt).toEqual([{ source: { id: alice.peer.id, name: 'alice' }, chunk: 3 }])
    expect(await sha256(path)).toBe(await sha256(src))
  })
})

describe('resume', () => {
  it('continues after the connection drops mid-transfer, without starting over', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'big.bin'), 8 * MiB)
    const net = memoryNet()
    const alice = await net.node('alice')
    const bob = await net.node(
      'bob',
      { downloads: join(dir, 'in'), autoAccept: true, progressInterval: 0 },
      {
        reconnect: { initialDelay: 20, maxDelay: 50, maxAttempts: 20 },
      },
    )
    await link(bob, alice) // bob dialed: bob reconnects
    const started = once(bob.files, 'download')
    const transfer = await alice.files.offer(bob.peer.id, src)
    const [download] = (await started) as [Download]
    await new Promise<void>((resolve) => {
      download.on('progress', (p) => {
        if (p.bytes >= 2 * MiB) resolve()
      })
    })
    const before = download.bytes
    const lost = once(alice.peer, 'peer:disconnect')
    net.network.dropConnections('bob')
    await lost
    expect(download.bytes).toBeLessThan(8 * MiB)
    let minAfter = Number.POSITIVE_INFINITY
    download.on('progress', (p) => {
      minAfter = Math.min(minAfter, p.bytes)
    })
    const { path } = await download.finished
    await transfer.finished
    expect(minAfter).toBeGreaterThanOrEqual(before)
    expect(await sha256(path)).toBe(await sha256(src))
    // Every chunk was delivered and kept once: nothing verified before the drop was fetched again.
    expect(download.sources()[0]!.chunks).toBe(32)
  })

  it('continues after the receiver restarts with the same data dir', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'big.bin'), 8 * MiB)
    const inbox = join(dir, 'in')
    const dataDir = join(dir, 'data')
    const net = memoryNet()
    const alice = await net.node('alice')
    const first = await net.node(
      'bob',
      { downloads: inbox, dataDir, autoAccept: true, progressInterval: 0 },
      { reconnect: false },
    )
    await link(first, alice)
    const started = once(first.files, 'download')
    const transfer = await alice.files.offer(first.peer.id, src)
    const [download] = (await started) as [Download]
    await new Promise<void>((resolve) => {
      download.on('progress', (p) => {
        if (p.bytes >= 3 * MiB) resolve()
      })
    })
    // Restart: the service saves its bitmap on close; the peer goes away.
    await first.files.close()
    await first.peer.stop()
    expect((await readdir(inbox)).filter((n) => n.endsWith('.parley-part'))).toEqual(['big.bin.parley-part'])

    // Same identity and data dir, without autoAccept: a saved download resumes by itself.
    const second = await net.node(
      'bob2',
      { downloads: inbox, dataDir, progressInterval: 0 },
      { identity: first.identity, name: 'bob' },
    )
    const resumed = once(second.files, 'download')
    await link(second, alice)
    const [again] = (await resumed) as [Download]
    const kept = again.bytes
    expect(kept).toBeGreaterThanOrEqual(3 * MiB)
    const { path } = await again.finished
    // Only what was missing was fetched after the restart.
    expect(again.sources()[0]!.chunks).toBe((8 * MiB - kept) / (256 * KiB))
    await transfer.finished
    expect(path).toBe(join(inbox, 'big.bin'))
    expect(await sha256(path)).toBe(await sha256(src))
    expect(await readdir(dataDir)).toEqual([])
  })

  it('continues after the receiver crashes and comes back before the sender noticed', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'big.bin'), 8 * MiB)
    const inbox = join(dir, 'in')
    const dataDir = join(dir, 'data')
    const net = memoryNet()
    const reconnect = { initialDelay: 20, maxDelay: 50, maxAttempts: 50 }
    const alice = await net.node('alice', {}, { reconnect })
    const crashing = await net.node('bob', {
      downloads: inbox,
      dataDir,
      autoAccept: true,
      progressInterval: 0,
      saveInterval: 20,
    })
    const address = crashing.peer.addresses[0]!
    await link(alice, crashing) // alice dialed: alice's session waits for bob to come back
    const started = once(crashing.files, 'download')
    const transfer = await alice.files.offer(crashing.peer.id, src)
    const [download] = (await started) as [Download]
    await new Promise<void>((resolve) => {
      download.on('progress', (p) => {
        if (p.bytes >= 3 * MiB) resolve()
      })
    })
    await waitUntil(() => existsSync(join(dataDir, `${download.root}.json`)))
    crashing.peer.destroy() // no GOODBYE, no files.close(): a crash

    const back = await net.node(
      'bob',
      { downloads: inbox, dataDir, progressInterval: 0 },
      { identity: crashing.identity, listen: address },
    )
    const [again] = (await once(back.files, 'download')) as [Download]
    expect(again.bytes).toBeGreaterThan(0)
    const { path } = await again.finished
    await transfer.finished
    expect(await sha256(path)).toBe(await sha256(src))
  })
})

describe('several sources', () => {
  it('fetches from two senders of the same content in parallel', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'movie.mkv'), 6 * MiB)
    const net = memoryNet()
    const alice = await net.node('alice')
    const carol = await net.node('carol')
    const bob = await net.node('bob', { downloads: join(dir, 'in') })
    await link(alice, bob)
    await link(carol, bob)
    const offered = nextOffer(bob.files)
    const a = await alice.files.offer(bob.peer.id, src)
    const offer = await offered
    const c = await carol.files.offer(bob.peer.id, src)
    await waitUntil(() => offer.sources.length === 2)
    const download = await offer.accept()
    const { path } = await download.finished
    await Promise.all([a.finished, c.finished])
    expect(await sha256(path)).toBe(await sha256(src))
    const chunks = download.sources().map((s) => s.chunks)
    expect(chunks).toHaveLength(2)
    expect(chunks.every((n) => n > 0)).toBe(true)
  })

  it('drops a lying source and gets its chunks from the honest one', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'movie.mkv'), 6 * MiB)
    const net = memoryNet()
    const alice = await net.node('alice')
    const mallory = await net.node(
      'mallory',
      {},
      {},
      lying(() => true),
    )
    const bob = await net.node('bob', { downloads: join(dir, 'in') })
    await link(alice, bob)
    await link(mallory, bob)
    const offered = nextOffer(bob.files)
    const a = await alice.files.offer(bob.peer.id, src)
    const offer = await offered
    const m = await mallory.files.offer(bob.peer.id, src)
    await waitUntil(() => offer.sources.length === 2)
    const download = await offer.accept()
    const dropped: { source: { id: string }; reason: string }[] = []
    download.on('source:dropped', (e) => dropped.push(e))
    const { path } = await download.finished
    await a.finished
    await expect(m.finished).rejects.toMatchObject({ code: 'CANCELLED' })
    expect(await sha256(path)).toBe(await sha256(src))
    expect(dropped).toEqual([{ source: { id: mallory.peer.id, name: 'mallory' }, reason: 'lying' }])
    expect(download.sources().find((s) => s.peer.id === mallory.peer.id)).toMatchObject({
      chunks: 0,
      strikes: 3,
    })
  })

  it('a source whose hash list does not add up to the root is dropped before any chunk is asked of it', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'movie.mkv'), 2 * MiB)
    const net = memoryNet()
    const mallory = await net.node('mallory', {}, {}, lyingHashes())
    const alice = await net.node('alice')
    const bob = await net.node('bob', { downloads: join(dir, 'in') })
    await link(mallory, bob)
    await link(alice, bob)
    const offered = nextOffer(bob.files)
    await mallory.files.offer(bob.peer.id, src) // first: the hash list is asked of it
    const offer = await offered
    await alice.files.offer(bob.peer.id, src)
    await waitUntil(() => offer.sources.length === 2)
    const download = await offer.accept()
    const corrupt: { source: { id: string }; chunk: number }[] = []
    download.on('corrupt', (e) => corrupt.push(e))
    const { path } = await download.finished
    expect(await sha256(path)).toBe(await sha256(src))
    expect(corrupt).toEqual([{ source: { id: mallory.peer.id, name: 'mallory' }, chunk: -1 }])
    expect(download.sources().find((s) => s.peer.id === mallory.peer.id)).toMatchObject({
      state: 'dropped',
      chunks: 0,
    })
  })

  it('fails with NO_SOURCES when the only source lies every time', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'x.bin'), 1 * MiB)
    const net = memoryNet()
    const mallory = await net.node(
      'mallory',
      {},
      {},
      lying(() => true),
    )
    const bob = await net.node('bob', { downloads: join(dir, 'in'), autoAccept: true })
    await link(mallory, bob)
    const started = once(bob.files, 'download')
    await mallory.files.offer(bob.peer.id, src)
    const [download] = (await started) as [Download]
    const err = (await download.finished.catch((e: unknown) => e)) as FilesError
    expect(err.code).toBe('NO_SOURCES')
    // Without a data directory nothing is kept: no file, no part file.
    await download.whenClosed()
    expect(await readdir(join(dir, 'in'))).toEqual([])
  })

  it('drops a source that stalls and finishes from the other', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'movie.mkv'), 3 * MiB)
    const net = memoryNet()
    const alice = await net.node('alice')
    const sloth = await net.node('sloth', {}, {}, stalling())
    const bob = await net.node('bob', { downloads: join(dir, 'in'), requestTimeout: 300 })
    await link(alice, bob)
    await link(sloth, bob)
    const offered = nextOffer(bob.files)
    // The staller offers first, so it is also asked for the hash list.
    await sloth.files.offer(bob.peer.id, src)
    const offer = await offered
    await alice.files.offer(bob.peer.id, src)
    await waitUntil(() => offer.sources.length === 2)
    const download = await offer.accept()
    const dropped: { source: { id: string }; reason: string }[] = []
    download.on('source:dropped', (e) => dropped.push(e))
    const { path } = await download.finished
    expect(await sha256(path)).toBe(await sha256(src))
    expect(dropped).toEqual([{ source: { id: sloth.peer.id, name: 'sloth' }, reason: 'slow' }])
  })

  it('a sender that restarts and offers again is a source again for the running download', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'big.bin'), 8 * MiB)
    const net = memoryNet()
    const first = await net.node('alice')
    const bob = await net.node('bob', { downloads: join(dir, 'in'), autoAccept: true, progressInterval: 0 })
    await link(first, bob)
    const started = once(bob.files, 'download')
    await first.files.offer(bob.peer.id, src)
    const [download] = (await started) as [Download]
    await new Promise<void>((resolve) => {
      download.on('progress', (p) => {
        if (p.bytes >= 2 * MiB) resolve()
      })
    })
    await first.files.close()
    await first.peer.stop()
    const second = await net.node('alice2', {}, { identity: first.identity, name: 'alice' })
    await link(second, bob)
    const again = await second.files.offer(bob.peer.id, src)
    const { path } = await download.finished
    await again.finished
    expect(await sha256(path)).toBe(await sha256(src))
    expect(download.sources()).toHaveLength(1)
    expect(download.sources()[0]!.chunks).toBe(32)
  })
})

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
})
