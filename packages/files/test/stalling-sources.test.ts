import { randomBytes } from 'node:crypto'
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { type Download, type FilesMessage, leafHash, Reason, rootHash } from '../src/index.js'
import {
  ioTurn,
  link,
  linkRaw,
  memoryNet,
  type Node,
  nextOffer,
  type RawFiles,
  rawFiles,
  sha256,
  tempDir,
  waitUntil,
} from './helpers.js'

// Sources that hold a download without feeding it: by offering again and again under fresh ids, or by
// leaving for good. Each must cost the download its requestTimeout or its resumeTimeout, not forever.

const KiB = 1024
const chunkSize = 256 * KiB
const leaves = Buffer.concat(Array.from({ length: 8 }, () => leafHash(Buffer.alloc(chunkSize))))
const size = 8 * chunkSize
const root = rootHash(size, chunkSize, leaves)

function fakeClocks(): void {
  // The memory network delivers on setImmediate, which stays real.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
  onTestFinished(() => {
    vi.useRealTimers()
  })
}

async function offered(
  dir: string,
  files: Parameters<ReturnType<typeof memoryNet>['node']>[1] = {},
): Promise<{ mallory: RawFiles; m: Node; bob: Node; download: Download }> {
  const net = memoryNet()
  const mallory = rawFiles()
  const m = await net.node('mallory', {}, {}, mallory.wrap)
  const bob = await net.node('bob', { downloads: join(dir, 'in'), autoAccept: true, ...files })
  await linkRaw(m, bob)
  const started = new Promise<Download>((resolve) => bob.files.once('download', resolve))
  mallory.send(bob.peer.id, { type: 'OFFER', id: randomBytes(16), root, size, chunkSize, name: 'z.bin' })
  return { mallory, m, bob, download: await started }
}

/** A fresh OFFER of the root from mallory. */
function offerAgain(mallory: RawFiles, to: Node): void {
  mallory.send(to.peer.id, { type: 'OFFER', id: randomBytes(16), root, size, chunkSize, name: 'z.bin' })
}

/**
 * Two minutes of fake time, a second at a time, `each(second)` at the start of each; stops early once
 * the download ends. Returns why its sources were dropped and how it ended.
 */
async function twoMinutes(
  download: Download,
  each: (second: number) => Promise<void>,
): Promise<{ dropped: string[]; failed: string }> {
  const dropped: string[] = []
  download.on('source:dropped', (e) => dropped.push(e.reason))
  const failed = download.finished.then(
    () => 'done',
    (e: { code: string }) => e.code,
  )
  for (let s = 0; s < 120 && download.status === 'running'; s++) {
    await each(s)
    await ioTurn()
    await vi.advanceTimersByTimeAsync(1_000)
  }
  return { dropped, failed: await failed }
}

/** Bob accepts every offer, with a data directory (partial downloads may stay); mallory is linked to him. */
async function acceptingWithDataDir(): Promise<{ dir: string; data: string; mallory: RawFiles; bob: Node }> {
  const dir = await tempDir()
  const data = join(dir, 'data')
  const net = memoryNet()
  const mallory = rawFiles()
  const m = await net.node('mallory', {}, {}, mallory.wrap)
  const bob = await net.node('bob', { downloads: join(dir, 'in'), dataDir: data, autoAccept: true })
  await linkRaw(m, bob)
  return { dir, data, mallory, bob }
}

describe('sources that hold a download without feeding it', () => {
  it('a source that never answers is dropped as slow, however often it offers again under a fresh id', async () => {
    fakeClocks()
    const { mallory, bob, download } = await offered(await tempDir())
    // A fresh OFFER of the root every 20 s, nothing else (requestTimeout 30 s).
    const { dropped, failed } = await twoMinutes(download, async (s) => {
      if (s % 20 === 19) offerAgain(mallory, bob)
    })
    expect(dropped).toEqual(['slow'])
    expect(failed).toBe('NO_SOURCES')
    expect(mallory.received.filter((m: FilesMessage) => m.type === 'GET_HASHES').length).toBeGreaterThan(0)
  })

  it('a source that never answers is dropped as slow, however often it leaves and comes back', async () => {
    fakeClocks()
    const { mallory, m, bob, download } = await offered(await tempDir())
    // Every 20 s it leaves, comes back 2 s later and offers again; it never answers (requestTimeout
    // 30 s). Time away does not count, and nor does coming back.
    const { dropped, failed } = await twoMinutes(download, async (s) => {
      if (s % 20 === 17) await m.peer.disconnect(bob.peer.id)
      if (s % 20 === 19) {
        await linkRaw(m, bob)
        offerAgain(mallory, bob)
      }
    })
    expect(dropped).toEqual(['slow'])
    expect(failed).toBe('NO_SOURCES')
    // Dropped for stalling, it is not accepted without asking again: its next offer waits for the user.
    const asked = new Promise((resolve) => bob.files.once('offer', resolve))
    offerAgain(mallory, bob)
    await asked
    expect(bob.files.downloads()).toEqual([])
  })

  // Bob dials here, so his session outlives a lost link: it waits offline, redials, and goes on over the
  // new link (the source stays the same source, not a new one).
  async function dialedByBob(): Promise<{
    net: ReturnType<typeof memoryNet>
    mallory: RawFiles
    download: Download
  }> {
    const net = memoryNet()
    const mallory = rawFiles()
    const m = await net.node('mallory', {}, {}, mallory.wrap)
    const bob = await net.node(
      'bob',
      { downloads: join(await tempDir(), 'in'), autoAccept: true },
      { reconnect: { initialDelay: 100, maxDelay: 1_000, maxAttempts: 1_000 } },
    )
    await bob.peer.connect(m.peer.addresses[0]!)
    await waitUntil(() => bob.files.peers().some((p) => p.id === m.peer.id))
    const started = new Promise<Download>((resolve) => bob.files.once('download', resolve))
    offerAgain(mallory, bob)
    return { net, mallory, download: await started }
  }

  it('a source that never answers is dropped as slow, however often its link is replaced', async () => {
    fakeClocks()
    const { net, mallory, download } = await dialedByBob()
    // Every 20 s the link drops and bob's session goes on over a new one within a second or two; the
    // source never answers (requestTimeout 30 s). A new link is no progress.
    const { dropped, failed } = await twoMinutes(download, async (s) => {
      if (s % 20 === 17) net.network.dropConnections('mallory')
    })
    expect(dropped).toEqual(['slow'])
    expect(failed).toBe('NO_SOURCES')
    // Asked anew on the new link after the drop at 17 s; dropped at 30 s, before the next.
    expect(mallory.received.filter((m) => m.type === 'GET_HASHES').length).toBeGreaterThanOrEqual(2)
  })

  it('time spent waiting for a new link does not count against a source', async () => {
    fakeClocks()
    const { net, mallory, download } = await dialedByBob()
    const asked = () => mallory.received.filter((m) => m.type === 'GET_HASHES').length
    let droppedWhileAway = true
    let askedBeforeHeal = 0
    // Cut off for 40 s, longer than requestTimeout (30 s), then back; it still never answers.
    const { dropped, failed } = await twoMinutes(download, async (s) => {
      if (s === 5) {
        net.network.partition('bob', 'mallory')
        net.network.dropConnections('mallory')
      }
      if (s === 45) {
        droppedWhileAway = download.status !== 'running'
        askedBeforeHeal = asked()
        net.network.heal()
      }
    })
    expect(droppedWhileAway).toBe(false)
    // Asked again once back, it is dropped for its own silence after that.
    expect(dropped).toEqual(['slow'])
    expect(failed).toBe('NO_SOURCES')
    expect(asked()).toBeGreaterThan(askedBeforeHeal)
  })

  it('a source offering again under fresh ids is asked for a few parts of the hash list each time, not all', async () => {
    const big = 64 * 1024 * chunkSize // 65,536 chunks: 64 parts of the hash list
    const bigRoot = randomBytes(32)
    const net = memoryNet()
    const mallory = rawFiles()
    const m = await net.node('mallory', {}, {}, mallory.wrap)
    const bob = await net.node('bob', {
      downloads: join(await tempDir(), 'in'),
      autoAccept: true,
      minFreeSpace: 0,
    })
    await linkRaw(m, bob)
    const offer = () =>
      mallory.send(bob.peer.id, {
        type: 'OFFER',
        id: randomBytes(16),
        root: bigRoot,
        size: big,
        chunkSize,
        name: 'big.bin',
      })
    const started = new Promise<Download>((resolve) => bob.files.once('download', resolve))
    offer()
    await started
    const asked = () => mallory.received.filter((msg: FilesMessage) => msg.type === 'GET_HASHES')
    const accepts = () => mallory.received.filter((msg: FilesMessage) => msg.type === 'ACCEPT').length
    // The first part is answered: the next part is asked for, and no offer after it asks for it again.
    await waitUntil(() => asked().length > 0)
    const first = asked()[0] as Extract<FilesMessage, { type: 'GET_HASHES' }>
    expect(first.start).toBe(0)
    mallory.send(bob.peer.id, { type: 'HASHES', id: first.id, start: 0, hashes: randomBytes(1_024 * 32) })
    await waitUntil(() => asked().length === 9)
    for (let i = 0; i < 10; i++) offer()
    await waitUntil(() => accepts() === 11)
    const after = asked().slice(9) as Extract<FilesMessage, { type: 'GET_HASHES' }>[]
    expect(after.map((m) => m.start)).not.toContain(0)
    // At most a window (8) of parts per offer, where all 64 parts each were asked before (640).
    expect(after.length).toBeLessThanOrEqual(80)
  })

  /**
   * Sources that, each time they are asked, wait `after` ms, cancel and offer the root again under a
   * fresh id: by turns, one of them is always a source, and none ever sends a byte.
   */
  async function cancellingByTurns(
    net: ReturnType<typeof memoryNet>,
    bob: Node,
    count: number,
    after: number,
  ): Promise<{ cycles: () => number }> {
    let cycles = 0
    for (let i = 0; i < count; i++) {
      let offerId = randomBytes(16)
      const sybil: RawFiles = rawFiles((from, msg) => {
        if (msg.type !== 'GET_HASHES' && msg.type !== 'REQUEST') return
        if (!Buffer.from(msg.id).equals(offerId)) return
        const asked = offerId
        setTimeout(() => {
          if (asked !== offerId) return
          cycles++
          sybil.send(from, { type: 'CANCEL', id: asked, reason: Reason.CANCELLED })
          offerId = randomBytes(16)
          sybil.send(from, { type: 'OFFER', id: offerId, root, size, chunkSize, name: 'z.bin' })
        }, after)
      })
      const node = await net.node(`sybil${i}`, {}, {}, sybil.wrap)
      await linkRaw(node, bob)
      sybil.send(bob.peer.id, { type: 'OFFER', id: offerId, root, size, chunkSize, name: 'z.bin' })
    }
    return { cycles: () => cycles }
  }

  it('sources that cancel and offer again by turns, never sending a byte, are dropped as slow', async () => {
    fakeClocks()
    const net = memoryNet()
    const bob = await net.node('bob', { downloads: join(await tempDir(), 'in'), autoAccept: true })
    const started = new Promise<Download>((resolve) => bob.files.once('download', resolve))
    // Each cancels 20 s into being asked (requestTimeout 30 s): a cancel is no progress either.
    const { cycles } = await cancellingByTurns(net, bob, 2, 20_000)
    const download = await started
    const dropped: string[] = []
    download.on('source:dropped', (e) => dropped.push(e.reason))
    const failed = download.finished.then(
      () => 'done',
      (e: { code: string }) => e.code,
    )
    for (let s = 0; s < 180 && download.status === 'running'; s++) {
      await ioTurn()
      await vi.advanceTimersByTimeAsync(1_000)
    }
    expect(download.status).toBe('failed')
    expect(await failed).toBe('NO_SOURCES')
    expect(dropped.filter((r) => r === 'slow')).toHaveLength(2)
    expect(cycles()).toBeGreaterThan(0)
  })

  it('sources that cancel and offer again by turns do not keep an honest source from being asked', async () => {
    const dir = await tempDir()
    const src = join(dir, 'zeros.bin')
    await writeFile(src, Buffer.alloc(size))
    const net = memoryNet()
    const bob = await net.node('bob', { downloads: join(dir, 'in'), requestTimeout: 600 })
    const offered = nextOffer(bob.files)
    // They offer first; each cancels 400 ms into being asked and offers again at once.
    await cancellingByTurns(net, bob, 2, 400)
    const offer = await offered
    const alice = await net.node('alice')
    await link(alice, bob)
    await alice.files.offer(bob.peer.id, src)
    await waitUntil(() => offer.sources.length === 3)
    const download = await offer.accept()
    const { path } = await download.finished
    expect(await sha256(path)).toBe(await sha256(src))
    expect(download.sources().find((x) => x.peer.id === alice.peer.id)?.chunks).toBe(8)
  })

  it('a download whose sources all left fails with NO_SOURCES after resumeTimeout, freeing its slot', async () => {
    fakeClocks()
    const dir = await tempDir()
    const { m, bob, download } = await offered(dir, { resumeTimeout: 60_000 })
    const failed = download.finished.catch((e: { code: string }) => e.code)
    await m.peer.stop()
    await waitUntil(() => bob.files.peers().length === 0)
    await vi.advanceTimersByTimeAsync(50_000)
    expect(download.status).toBe('running')
    for (let s = 0; s < 20 && download.status === 'running'; s++) await vi.advanceTimersByTimeAsync(1_000)
    expect(await failed).toBe('NO_SOURCES')
    expect(bob.files.downloads()).toEqual([])
    // No data directory: nothing could resume it, so nothing is left behind.
    await download.whenClosed()
    expect(await readdir(join(dir, 'in'))).toEqual([])
  })

  it('an offer accepted and cancelled before anything verified leaves no part file or state behind', async () => {
    const { dir, data, mallory, bob } = await acceptingWithDataDir()
    // Each round: an offer, accepted without asking, then cancelled by its sender. A thousand of these
    // once left a thousand empty part files (and their states), until no name was left for an honest file.
    for (let i = 0; i < 3; i++) {
      const id = randomBytes(16)
      const started = new Promise<Download>((resolve) => bob.files.once('download', resolve))
      mallory.send(bob.peer.id, {
        type: 'OFFER',
        id,
        root: randomBytes(32),
        size,
        chunkSize,
        name: 'report.pdf',
      })
      const download = await started
      const failed = download.finished.catch((e: { code: string }) => e.code)
      mallory.send(bob.peer.id, { type: 'CANCEL', id, reason: Reason.CANCELLED })
      expect(await failed).toBe('CANCELLED')
      await download.whenClosed()
    }
    expect(await readdir(join(dir, 'in'))).toEqual([])
    expect((await readdir(data).catch(() => [])).filter((f) => f.endsWith('.json'))).toEqual([])
  })

  it('one peer’s offers leave at most 16 partial downloads behind, each with a chunk verified', async () => {
    const { dir, data, mallory, bob } = await acceptingWithDataDir()
    const small = 32 * KiB
    let handled = 0
    // Each round a file of its own making: one chunk sent and verified, then the offer cancelled.
    for (let round = 0; round < 18; round++) {
      const chunks = [randomBytes(small), randomBytes(small)]
      const ls = Buffer.concat(chunks.map((c) => leafHash(c)))
      const id = randomBytes(16)
      const started = new Promise<Download>((resolve) => bob.files.once('download', resolve))
      mallory.send(bob.peer.id, {
        type: 'OFFER',
        id,
        root: rootHash(2 * small, small, ls),
        size: 2 * small,
        chunkSize: small,
        name: 'junk.bin',
      })
      const download = await started
      const failed = download.finished.catch((e: { code: string }) => e.code)
      let sent = false
      await waitUntil(() => {
        for (; handled < mallory.received.length; handled++) {
          const msg = mallory.received[handled] as FilesMessage
          if (msg.type === 'GET_HASHES')
            mallory.send(bob.peer.id, { type: 'HASHES', id, start: 0, hashes: ls })
          if (msg.type === 'REQUEST' && !sent) {
            mallory.send(bob.peer.id, { type: 'CHUNK', id, index: 0, offset: 0, data: chunks[0]! })
            sent = true
          }
        }
        return download.bytes === small
      })
      mallory.send(bob.peer.id, { type: 'CANCEL', id, reason: Reason.CANCELLED })
      expect(await failed).toBe('CANCELLED')
      await download.whenClosed()
    }
    const states = (await readdir(data)).filter((f) => f.endsWith('.json'))
    expect(states).toHaveLength(16)
    expect((await readdir(join(dir, 'in'))).filter((f) => f.endsWith('.parley-part'))).toHaveLength(16)
  })

  it('with no data directory, closing the service removes a partial download instead of leaving its part file', async () => {
    const dir = await tempDir()
    const { bob, download } = await offered(dir)
    const finished = download.finished.catch((e: { code: string; message: string }) => e)
    await bob.files.close()
    expect(await finished).toMatchObject({ code: 'CANCELLED', message: expect.stringMatching(/was removed/) })
    expect(await readdir(join(dir, 'in'))).toEqual([])
  })
})
