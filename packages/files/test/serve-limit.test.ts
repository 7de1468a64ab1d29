import { join } from 'node:path'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { type FilesError, type FilesMessage, Reason } from '../src/index.js'
import { linkRaw, memoryNet, randomFile, rawFiles, tempDir, waitUntil } from './helpers.js'

const KiB = 1024

/** Alice offers a 64 KiB file to a hand-written receiver, which accepts it. */
async function acceptedByMallory(options: Parameters<ReturnType<typeof memoryNet>['node']>[1] = {}) {
  const dir = await tempDir()
  const src = await randomFile(join(dir, 'a.bin'), 64 * KiB)
  const net = memoryNet()
  const alice = await net.node('alice', options)
  const mallory = rawFiles()
  const m = await net.node('mallory', {}, {}, mallory.wrap)
  await linkRaw(m, alice)
  const transfer = await alice.files.offer(m.peer.id, src)
  await waitUntil(() => mallory.received.some((msg) => msg.type === 'OFFER'))
  const { id } = mallory.received.find((msg) => msg.type === 'OFFER') as FilesMessage
  mallory.send(alice.peer.id, { type: 'ACCEPT', id })
  const failed = transfer.finished.then(
    () => undefined,
    (e: FilesError) => e.code,
  )
  return { alice, mallory, id, transfer, failed }
}

describe('serving', () => {
  it('a receiver fetching the same file again and again is stopped after maxServedCopies copies', async () => {
    const { alice, mallory, id, failed } = await acceptedByMallory()
    let served = 0
    const count = () => {
      served = 0
      for (const msg of mallory.received) if (msg.type === 'CHUNK') served += msg.data.byteLength
      return served
    }
    const cancelled = () => mallory.received.some((msg) => msg.type === 'CANCEL')
    // The whole file, ten times over (bounded): the default allows four copies.
    for (let round = 1; round <= 10 && !cancelled(); round++) {
      mallory.send(alice.peer.id, { type: 'REQUEST', id, ranges: [{ start: 0, count: 1 }] })
      await waitUntil(() => count() >= round * 64 * KiB || cancelled())
    }
    expect(await failed).toBe('SERVE_LIMIT')
    expect(mallory.received.at(-1)).toMatchObject({ type: 'CANCEL', reason: Reason.FAILED })
    expect(count()).toBe(4 * 64 * KiB)
  })

  it('a receiver that accepts and then asks for nothing ends the transfer after resumeTimeout', async () => {
    // The memory network delivers on setImmediate, which stays real.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
    onTestFinished(() => {
      vi.useRealTimers()
    })
    const { alice, mallory, id, transfer, failed } = await acceptedByMallory({ resumeTimeout: 60_000 })
    await waitUntil(() => transfer.status === 'accepted')
    // A request now and then keeps it going; then silence.
    await vi.advanceTimersByTimeAsync(50_000)
    mallory.send(alice.peer.id, { type: 'REQUEST', id, ranges: [{ start: 0, count: 1 }] })
    await waitUntil(() => mallory.received.some((msg) => msg.type === 'CHUNK'))
    await vi.advanceTimersByTimeAsync(50_000)
    expect(transfer.status).toBe('accepted')
    await vi.advanceTimersByTimeAsync(15_000)
    expect(await failed).toBe('CANCELLED')
    expect(mallory.received.at(-1)).toMatchObject({ type: 'CANCEL', reason: Reason.CANCELLED })
  })
})
