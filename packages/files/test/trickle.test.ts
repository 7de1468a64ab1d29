import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { type Download, type FilesMessage, leafHash, rootHash } from '../src/index.js'
import { ioTurn, linkRaw, memoryNet, rawFiles, tempDir } from './helpers.js'

const KiB = 1024

describe('slow sources', () => {
  it('a source that trickles a piece just inside requestTimeout is dropped as slow, freeing the download', async () => {
    // Fake clocks (the memory network delivers on setImmediate, which stays real).
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
    onTestFinished(() => {
      vi.useRealTimers()
    })
    const dir = await tempDir()
    const net = memoryNet()
    const mallory = rawFiles()
    const m = await net.node('mallory', {}, {}, mallory.wrap)
    // Default requestTimeout (30 s) and minRate.
    const bob = await net.node('bob', { downloads: join(dir, 'in'), autoAccept: true })
    await linkRaw(m, bob)
    // 64 chunks of zeros: the leaves cost one hash.
    const chunkSize = 256 * KiB
    const leaves = Buffer.concat(Array.from({ length: 64 }, () => leafHash(Buffer.alloc(chunkSize))))
    const id = randomBytes(16)
    const size = 64 * chunkSize
    const started = new Promise<Download>((resolve) => bob.files.once('download', resolve))
    mallory.send(bob.peer.id, {
      type: 'OFFER',
      id,
      root: rootHash(size, chunkSize, leaves),
      size,
      chunkSize,
      name: 'z.bin',
    })
    const download = await started
    const dropped: string[] = []
    download.on('source:dropped', (e) => dropped.push(e.reason))
    const failed = download.finished.catch((e: { code: string }) => e.code)
    let handled = 0
    const asked: { index: number; offset: number }[] = []
    // Ten minutes of fake time: one 32 KiB piece every 20 s (1.6 KiB/s), each well inside requestTimeout.
    for (let s = 0; s < 600 && download.status === 'running'; s++) {
      for (; handled < mallory.received.length; handled++) {
        const msg = mallory.received[handled] as FilesMessage
        if (msg.type === 'GET_HASHES') {
          const hashes = leaves.subarray(msg.start * 32, (msg.start + msg.count) * 32)
          mallory.send(bob.peer.id, { type: 'HASHES', id, start: msg.start, hashes })
        } else if (msg.type === 'REQUEST') {
          for (const r of msg.ranges)
            for (let i = 0; i < r.count; i++) asked.push({ index: r.start + i, offset: 0 })
        }
      }
      const job = asked[0]
      if (s % 20 === 0 && job) {
        mallory.send(bob.peer.id, {
          type: 'CHUNK',
          id,
          index: job.index,
          offset: job.offset,
          data: Buffer.alloc(32 * KiB),
        })
        job.offset += 32 * KiB
        if (job.offset === chunkSize) asked.shift()
      }
      await ioTurn()
      await vi.advanceTimersByTimeAsync(1_000)
    }
    expect(await failed).toBe('NO_SOURCES')
    expect(dropped).toEqual(['slow'])
    expect(bob.files.downloads()).toEqual([])
  })
})
