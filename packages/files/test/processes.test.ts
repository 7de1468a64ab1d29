import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface, type Interface } from 'node:readline'
import { createPeer, tcpTransport } from '@parley/core'
import { describe, expect, it, onTestFinished } from 'vitest'
import { type CorruptEvent, createFileService, type DropReason, type PeerRef } from '../src/index.js'
import { nextOffer, randomFile, sha256, tempDir, waitUntil } from './helpers.js'

const MiB = 1024 * 1024
const fixture = new URL('./fixtures/source-peer.mjs', import.meta.url).pathname
const dist = new URL('../dist/index.js', import.meta.url).pathname

/** Resolves with `p`, or fails after `ms` saying what was awaited. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

interface Source {
  child: ChildProcess
  id: string
  address: string
  /** The next JSON line the process prints. */
  next(): Promise<Record<string, string>>
}

/** Starts a source process offering `file` to `receiver`; killed when the test ends. */
async function startSource(file: string, receiver: string, lie: boolean): Promise<Source> {
  const child = spawn(process.execPath, [fixture, file, receiver, ...(lie ? ['--lie'] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  onTestFinished(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  const lines: Interface = createInterface({ input: child.stdout! })
  const queue: string[] = []
  const waiting: ((line: string) => void)[] = []
  lines.on('line', (line) => {
    const w = waiting.shift()
    if (w) w(line)
    else queue.push(line)
  })
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`a source process exited (${code})`))),
  )
  exited.catch(() => {})
  const next = () =>
    within(
      Promise.race([
        new Promise<string>((resolve) => {
          const line = queue.shift()
          if (line !== undefined) resolve(line)
          else waiting.push(resolve)
        }),
        exited,
      ]).then((line) => JSON.parse(line) as Record<string, string>),
      30_000,
      'a line from a source process',
    )
  const hello = await next()
  return { child, id: hello.id!, address: hello.address!, next }
}

describe('between real processes over TCP', () => {
  it('two processes offer the same content, one lies: the liar is reported and dropped, the file arrives identical', async () => {
    if (!existsSync(dist)) throw new Error('build @parley/files first: pnpm --filter @parley/files build')
    const dir = await tempDir()
    // 65 chunks: the liar, asked for two at a time like the honest source, is caught three times long
    // before the honest one could deliver them all.
    const size = 16 * MiB + 1_234
    const src = await randomFile(join(dir, 'shared.bin'), size)

    const files = createFileService({ downloads: join(dir, 'in') })
    const receiver = createPeer({ transport: tcpTransport(), name: 'receiver', services: [files] })
    onTestFinished(async () => {
      await files.close()
      await receiver.stop()
    })
    await receiver.start()
    const [honest, liar] = await Promise.all([
      startSource(src, receiver.id, false),
      startSource(src, receiver.id, true),
    ])

    // Both offer the same root: one offer with two sources.
    const offered = nextOffer(files)
    await receiver.connect(liar.address)
    const offer = await within(offered, 20_000, 'the first offer')
    await receiver.connect(honest.address)
    await waitUntil(() => offer.sources.length === 2, 20_000)
    expect(offer.sources.map((p) => p.id).sort()).toEqual([honest.id, liar.id].sort())

    const download = await offer.accept()
    const corrupt: CorruptEvent[] = []
    const dropped: { source: PeerRef; reason: DropReason }[] = []
    download.on('corrupt', (e) => corrupt.push(e))
    download.on('source:dropped', (e) => dropped.push(e))
    const { path } = await within(download.finished, 60_000, 'the download')

    // Hashed here, not by the code under test.
    expect(await sha256(path)).toBe(await sha256(src))
    expect(corrupt.length).toBeGreaterThan(0)
    for (const e of corrupt) expect(e).toMatchObject({ source: { id: liar.id }, reason: 'bad-chunk' })
    expect(dropped).toEqual([{ source: { id: liar.id, name: 'liar' }, reason: 'lying' }])
    const bySource = Object.fromEntries(download.sources().map((s) => [s.peer.id, s]))
    expect(bySource[liar.id]).toMatchObject({ chunks: 0, state: 'dropped' })
    expect(bySource[honest.id]!.chunks).toBe(65)
    // Each process learns how its side ended.
    expect(await honest.next()).toEqual({ event: 'done' })
    expect(await liar.next()).toEqual({ event: 'failed', code: 'CANCELLED' })
  }, 150_000) // above the sum of the bounded waits inside, which say what they waited for
})
