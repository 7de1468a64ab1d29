import { once } from 'node:events'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Download, IncomingOffer, Progress } from '../src/index.js'
import { link, memoryNet, nextOffer, randomFile, sha256, tempDir } from './helpers.js'

const KiB = 1024
const MiB = 1024 * KiB

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

  // Whichever clock runs out first: the sender's (its CANCEL says so) or the receiver's (its DECLINE).
  it.each([
    ['the receiver’s', { sender: 5_000, receiver: 150 }],
    ['the sender’s', { sender: 150, receiver: 5_000 }],
  ])('an unanswered offer expires on both sides, %s clock first', async (_, timeouts) => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'a.bin'), 10 * KiB)
    const net = memoryNet()
    const alice = await net.node('alice', { offerTimeout: timeouts.sender })
    const bob = await net.node('bob', { offerTimeout: timeouts.receiver })
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

  it('progress comes at most every 250 ms by default (and once at the end), on both sides', async () => {
    const dir = await tempDir()
    const src = await randomFile(join(dir, 'big.bin'), 16 * MiB)
    const net = memoryNet()
    const alice = await net.node('alice')
    const bob = await net.node('bob', { downloads: join(dir, 'in') })
    await link(alice, bob)
    const offered = nextOffer(bob.files)
    const transfer = await alice.files.offer(bob.peer.id, src)
    const offer = await offered
    const started = Date.now()
    const download = await offer.accept()
    let received = 0
    let sent = 0
    download.on('progress', () => received++)
    transfer.on('progress', () => sent++)
    await download.finished
    await transfer.finished
    const elapsed = Date.now() - started
    // 64 chunks: unthrottled, that would be 64 events a side. The sender may report its last chunk
    // sent and then the receiver's DONE, both at full size.
    const allowed = Math.floor(elapsed / 250) + 3
    expect(received).toBeGreaterThan(0)
    expect(received).toBeLessThanOrEqual(allowed)
    expect(sent).toBeLessThanOrEqual(allowed)
  })
})
