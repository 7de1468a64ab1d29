import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { hashFile, type IncomingOffer } from '../src/index.js'
import {
  holding,
  link,
  linkRaw,
  memoryNet,
  randomFile,
  rawFiles,
  sha256,
  tempDir,
  waitUntil,
} from './helpers.js'

describe('offers of one root', () => {
  it('an offer of a known root with another size is its own offer: it cannot hijack the real one', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'report.pdf'), 1_000_000)
    const file = await hashFile(src)
    const net = memoryNet()
    const sender = holding()
    const alice = await net.node('alice', {}, {}, sender.wrap)
    const mallory = rawFiles()
    const m = await net.node('mallory', {}, {}, mallory.wrap)
    const bob = await net.node('bob', { downloads: join(dir, 'in') })
    await linkRaw(m, bob)
    await link(alice, bob)
    const offers: IncomingOffer[] = []
    bob.files.on('offer', (o) => offers.push(o))
    // Mallory learned the root and offers it first, claiming another size.
    const squatId = randomBytes(16)
    mallory.send(bob.peer.id, {
      type: 'OFFER',
      id: squatId,
      root: file.root,
      size: file.size + 1,
      chunkSize: file.chunkSize,
      name: 'report.pdf',
    })
    await waitUntil(() => offers.length === 1)
    const transfer = await alice.files.offer(bob.peer.id, src)
    await waitUntil(() => offers.length === 2, 2_000)
    const [squat, real] = offers as [IncomingOffer, IncomingOffer]
    expect(squat.sources.map((p) => p.name)).toEqual(['mallory'])
    expect(real.sources.map((p) => p.name)).toEqual(['alice'])
    expect(real.size).toBe(file.size)
    sender.hold = true
    const download = await real.accept()
    const dropped: string[] = []
    download.on('source:dropped', (e) => dropped.push(`${e.source.name}:${e.reason}`))
    // One download per root: the other claim waits until this one ends.
    await expect(squat.accept()).rejects.toMatchObject({ code: 'BUSY' })
    sender.hold = false
    const { path } = await download.finished
    await transfer.finished
    expect(await sha256(path)).toBe(await sha256(src))
    expect(dropped).toEqual([])
  })
})
