import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Download } from '../src/index.js'
import { holding, link, memoryNet, randomFile, sha256, tempDir, waitUntil } from './helpers.js'

const KiB = 1024
const MiB = 1024 * KiB

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
    // Nobody waits for a paused download: it ends as CANCELLED, its part file kept.
    await expect(download.finished).rejects.toMatchObject({ code: 'CANCELLED' })
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
    const sender = holding()
    const alice = await net.node('alice', {}, { reconnect }, sender.wrap)
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
    // Alice holds the rest, so the download cannot finish before the crash, however fast the machine.
    sender.hold = true
    await waitUntil(() => existsSync(join(dataDir, `${download.root}.json`)))
    crashing.peer.destroy() // no GOODBYE, no files.close(): a crash
    sender.hold = false

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
