import { once } from 'node:events'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { CorruptEvent, Download, FilesError } from '../src/index.js'
import {
  link,
  lying,
  lyingHashes,
  memoryNet,
  nextOffer,
  randomFile,
  sha256,
  stalling,
  tempDir,
  waitUntil,
} from './helpers.js'

const KiB = 1024
const MiB = 1024 * KiB

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
    const corrupt: CorruptEvent[] = []
    download.on('corrupt', (e) => corrupt.push(e))
    const { path } = await download.finished
    await transfer.finished
    expect(corrupt).toEqual([{ source: { id: alice.peer.id, name: 'alice' }, chunk: 3, reason: 'bad-chunk' }])
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
    const corrupt: CorruptEvent[] = []
    download.on('corrupt', (e) => corrupt.push(e))
    const { path } = await download.finished
    expect(await sha256(path)).toBe(await sha256(src))
    expect(corrupt).toEqual([
      { source: { id: mallory.peer.id, name: 'mallory' }, chunk: -1, reason: 'bad-hashes' },
    ])
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

  it('a liar is reported with its id and reason each time, and every chunk it spoilt comes from the honest source', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'movie.mkv'), 4 * MiB)
    const net = memoryNet()
    const alice = await net.node('alice')
    const mallory = await net.node(
      'mallory',
      {},
      {},
      lying(() => true),
    )
    // Strikes high enough that mallory stays a source to the end: every chunk it is asked for is bad.
    const bob = await net.node('bob', { downloads: join(dir, 'in'), maxStrikes: 1_000 })
    await link(alice, bob)
    await link(mallory, bob)
    const offered = nextOffer(bob.files)
    await mallory.files.offer(bob.peer.id, src)
    const offer = await offered
    await alice.files.offer(bob.peer.id, src)
    await waitUntil(() => offer.sources.length === 2)
    const download = await offer.accept()
    const corrupt: CorruptEvent[] = []
    download.on('corrupt', (e) => corrupt.push(e))
    const { path } = await download.finished
    expect(await sha256(path)).toBe(await sha256(src))
    expect(corrupt.length).toBeGreaterThan(0)
    for (const e of corrupt) {
      expect(e).toMatchObject({ source: { id: mallory.peer.id, name: 'mallory' }, reason: 'bad-chunk' })
    }
    // A chunk mallory spoilt is never asked of it again while alice has not failed it.
    const chunks = corrupt.map((e) => e.chunk)
    expect(new Set(chunks).size).toBe(chunks.length)
    const bySource = Object.fromEntries(download.sources().map((s) => [s.peer.name, s]))
    expect(bySource.mallory).toMatchObject({ chunks: 0, strikes: corrupt.length })
    expect(bySource.alice!.chunks).toBe(16)
  })
})
