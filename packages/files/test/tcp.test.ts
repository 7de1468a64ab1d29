import { once } from 'node:events'
import { join } from 'node:path'
import { createPeer, tcpTransport } from '@parley/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createFileService, type Download, type IncomingOffer } from '../src/index.js'
import { randomFile, sha256, tempDir, waitUntil } from './helpers.js'

const MiB = 1024 * 1024

function tcpNode(name: string, files = createFileService()) {
  const peer = createPeer({ transport: tcpTransport(), name, listen: '127.0.0.1:0', services: [files] })
  onTestFinished(async () => {
    await files.close()
    await peer.stop()
  })
  return { peer, files }
}

describe('over TCP', () => {
  it('a file arrives identical, and chat gets through while it is in flight', async () => {
    const dir = await tempDir()
    const size = 32 * MiB + 7
    const src = await randomFile(join(dir, 'video.mp4'), size)
    const alice = tcpNode('alice')
    const bob = tcpNode('bob', createFileService({ downloads: join(dir, 'in'), progressInterval: 0 }))
    await Promise.all([alice.peer.start(), bob.peer.start()])
    await alice.peer.connect(bob.peer.addresses[0]!)
    await waitUntil(() => alice.files.peers().length === 1)

    const offered = once(bob.files, 'offer')
    const transfer = await alice.files.offer(bob.peer.id, src)
    const [offer] = (await offered) as [IncomingOffer]
    const download = await offer.accept()
    await new Promise<void>((resolve) => {
      download.on('progress', (p) => {
        if (p.bytes >= 4 * MiB) resolve()
      })
    })
    // Chat shares the link: its message is acknowledged long before the file is done.
    const chat = once(bob.peer, 'message')
    await alice.peer.send(bob.peer.id, 'still here?')
    expect(download.bytes).toBeLessThan(size)
    expect(((await chat) as [{ text: string }])[0].text).toBe('still here?')

    const { path } = await download.finished
    await transfer.finished
    expect(await sha256(path)).toBe(await sha256(src))
  })
})

describe('bounded', () => {
  // Over TCP: the memory transport keeps up to 1,024 delivered chunks referenced (it compacts its queue
  // in batches), which would count the file itself against the bound.
  it('a 50 MB transfer keeps at most window chunks in flight, and live memory stays small', async () => {
    const gc = (globalThis as { gc?: () => void }).gc
    if (!gc) throw new Error('run with --expose-gc (vitest.config.ts sets it)')
    const live = () => {
      const m = process.memoryUsage()
      return m.heapUsed + m.arrayBuffers
    }
    const dir = await tempDir()
    const size = 50 * MiB
    const src = await randomFile(join(dir, 'huge.bin'), size)
    const alice = tcpNode('alice')
    const bob = tcpNode(
      'bob',
      createFileService({ downloads: join(dir, 'in'), autoAccept: true, progressInterval: 0, window: 2 }),
    )
    await Promise.all([alice.peer.start(), bob.peer.start()])
    await alice.peer.connect(bob.peer.addresses[0]!)
    await waitUntil(() => alice.files.peers().length === 1)
    const started = once(bob.files, 'download')
    gc()
    const before = live()
    const transfer = await alice.files.offer(bob.peer.id, src)
    const [download] = (await started) as [Download]
    let maxInFlight = 0
    let maxLive = 0
    let events = 0
    download.on('progress', () => {
      maxInFlight = Math.max(maxInFlight, download.chunksInFlight)
      // Both peers' memory mid-transfer, after a collection: what is held, not garbage.
      if (++events % 16 === 0) {
        gc()
        maxLive = Math.max(maxLive, live() - before)
      }
    })
    const { path } = await download.finished
    await transfer.finished
    expect(events).toBeGreaterThan(100)
    expect(maxInFlight).toBeLessThanOrEqual(2)
    // The file is 50 MB; both ends together hold a few chunks' worth (plus buffers the collector
    // releases in the background: 5 to 21 MiB measured), never a copy of the file.
    expect(maxLive).toBeLessThan(32 * MiB)
    expect(await sha256(path)).toBe(await sha256(src))
  })
})
