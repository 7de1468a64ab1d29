/**
 * File transfer (issue 14): @parley/files between two processes over loopback TCP with the default
 * Noise channel and the default settings (window of 2 chunks of 256 KiB, rate limit on). The receiver
 * auto-accepts; the clock runs from its `download` event to the last chunk verified and written
 * (MB/s), and to the file checked again and renamed into place (MB/s with the final check). The
 * sender's hashing before the offer is timed apart. Each side reports its peak RSS (`maxRSS`): the
 * transfer streams, so it should not grow with the file. Each size gets fresh processes.
 *
 * Run by `pnpm bench` after the fair-sharing sections, or alone: `node dist/files.js [--sizes 64,256]`
 * (MiB).
 */
import { fork } from 'node:child_process'
import { createHash, randomFillSync } from 'node:crypto'
import { once } from 'node:events'
import { createReadStream } from 'node:fs'
import { mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createPeer, tcpTransport } from '@parley/core'
import { createFileService, type Download } from '@parley/files'

const MiB = 1024 * 1024
/** Sizes of the file row: full run and `--quick`, in MiB. */
export const FILE_SIZES = { full: [256, 1024], quick: [64, 256] } as const
/** The compiled script the two processes run (also when this module is loaded from src/ by vitest). */
const SCRIPT = fileURLToPath(new URL('../dist/files.js', import.meta.url))
/** One size's whole run (writing the file, hashing, transfer, check) must end within this. */
const TIME_CAP_MS = 300_000

type Reply =
  | { type: 'ready'; id: string; address: string }
  | {
      type: 'received'
      transferMs: number
      totalMs: number
      path: string
      maxRssKiB: number
      baseRssKiB: number
    }
  | { type: 'sent'; hashMs: number; maxRssKiB: number; baseRssKiB: number }
  | { type: 'failed'; reason: string }

const rssKiB = () => process.memoryUsage().rss / 1024

/** The receiving process: auto-accepts one file into `dir` and reports its timings and peak RSS. */
async function receive(dir: string): Promise<void> {
  const files = createFileService({ downloads: dir, autoAccept: true, progressInterval: 0 })
  const peer = createPeer({
    transport: tcpTransport(),
    name: 'receiver',
    listen: '127.0.0.1:0',
    services: [files],
  })
  await peer.start()
  const baseRssKiB = rssKiB()
  files.on('download', (d: Download) => {
    const started = performance.now()
    let written: number | undefined
    d.on('progress', (p) => {
      if (written === undefined && p.bytes === p.size) written = performance.now()
    })
    d.finished.then(
      ({ path }) => {
        const done = performance.now()
        process.send!({
          type: 'received',
          transferMs: (written ?? done) - started,
          totalMs: done - started,
          path,
          maxRssKiB: process.resourceUsage().maxRSS,
          baseRssKiB,
        } satisfies Reply)
      },
      (err: Error) => process.send!({ type: 'failed', reason: `receiver: ${err.message}` } satisfies Reply),
    )
  })
  process.send!({ type: 'ready', id: peer.id, address: peer.addresses[0]! } satisfies Reply)
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stop')
      void files
        .close()
        .then(() => peer.stop())
        .then(() => process.exit(0))
  })
}

/** The sending process: dials the receiver, offers `path`, waits until it is saved. */
async function send(address: string, path: string): Promise<void> {
  const files = createFileService()
  const peer = createPeer({ transport: tcpTransport(), name: 'sender', listen: false, services: [files] })
  await peer.start()
  try {
    const remote = await peer.connect(address)
    for (let i = 0; i < 500 && !files.peers().some((p) => p.id === remote.id); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    const baseRssKiB = rssKiB()
    const t = performance.now()
    const transfer = await files.offer(remote.id, path)
    const hashMs = performance.now() - t
    await transfer.finished
    process.send!({
      type: 'sent',
      hashMs,
      maxRssKiB: process.resourceUsage().maxRSS,
      baseRssKiB,
    } satisfies Reply)
  } catch (err) {
    process.send!({ type: 'failed', reason: `sender: ${(err as Error).message}` } satisfies Reply)
  }
  await files.close()
  await peer.stop()
  process.exit(0)
}

/** Writes `size` random bytes, 8 MiB at a time. */
async function writeRandom(path: string, size: number): Promise<void> {
  const fh = await open(path, 'w')
  const block = Buffer.allocUnsafe(8 * MiB)
  try {
    for (let at = 0; at < size; at += block.length) {
      const n = Math.min(block.length, size - at)
      randomFillSync(block, 0, n)
      await fh.write(block, 0, n, at)
    }
  } finally {
    await fh.close()
  }
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256')
  const stream = createReadStream(path, { highWaterMark: MiB })
  stream.on('data', (d) => h.update(d))
  await once(stream, 'end')
  return h.digest('hex')
}

export interface FileRun {
  sizeMiB: number
  mbPerSec: number
  /** Including the receiver's read-back check and the rename into place. */
  mbPerSecChecked: number
  hashMs: number
  sender: { maxRssKiB: number; baseRssKiB: number }
  receiver: { maxRssKiB: number; baseRssKiB: number }
}

export type FileOutcome = FileRun | { sizeMiB: number; failed: string }

function nextReply(child: ReturnType<typeof fork>, what: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`${what} exited (${code}) before answering`))
    child.once('exit', onExit)
    child.once('message', (m) => {
      child.off('exit', onExit)
      resolve(m as Reply)
    })
  })
}

async function runOne(sizeMiB: number): Promise<FileRun> {
  const dir = await mkdtemp(join(tmpdir(), 'parley-bench-files-'))
  const children: ReturnType<typeof fork>[] = []
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    const work = (async () => {
      const src = join(dir, 'file.bin')
      await writeRandom(src, sizeMiB * MiB)
      const receiver = fork(SCRIPT, ['--receive', join(dir, 'in')], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      })
      children.push(receiver)
      const ready = await nextReply(receiver, 'the receiver')
      if (ready.type !== 'ready')
        throw new Error(ready.type === 'failed' ? ready.reason : 'receiver not ready')
      const received = nextReply(receiver, 'the receiver')
      const sender = fork(SCRIPT, ['--send', ready.address, src], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      })
      children.push(sender)
      const [got, sent] = await Promise.all([received, nextReply(sender, 'the sender')])
      if (got.type === 'failed') throw new Error(got.reason)
      if (sent.type === 'failed') throw new Error(sent.reason)
      if (got.type !== 'received' || sent.type !== 'sent') throw new Error('unexpected answers')
      // Checked here, not by the code under test.
      if ((await sha256(got.path)) !== (await sha256(src))) throw new Error('the saved file differs')
      const bytes = sizeMiB * MiB
      return {
        sizeMiB,
        mbPerSec: bytes / (got.transferMs / 1000) / 1e6,
        mbPerSecChecked: bytes / (got.totalMs / 1000) / 1e6,
        hashMs: sent.hashMs,
        sender: { maxRssKiB: sent.maxRssKiB, baseRssKiB: sent.baseRssKiB },
        receiver: { maxRssKiB: got.maxRssKiB, baseRssKiB: got.baseRssKiB },
      }
    })()
    const cap = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`time cap of ${TIME_CAP_MS / 1000} s reached`)), TIME_CAP_MS)
    })
    return await Promise.race([work, cap])
  } finally {
    clearTimeout(timer)
    for (const child of children) {
      // A child that finished may be exiting on its own: its channel closing under this send is no
      // failure (without a callback, the EPIPE is an 'error' event, which fails the wait for 'exit' below).
      if (child.connected) child.send({ type: 'stop' }, () => {})
      setTimeout(() => child.kill('SIGKILL'), 5_000).unref()
      if (child.exitCode === null)
        await Promise.race([once(child, 'exit'), new Promise((r) => setTimeout(r, 5_000))])
    }
    await rm(dir, { recursive: true, force: true })
  }
}

/** One transfer per size (MiB), fresh processes each; a failure is reported, not thrown. */
export async function runFiles(
  sizesMiB: readonly number[],
  log: (line: string) => void = () => {},
): Promise<FileOutcome[]> {
  const out: FileOutcome[] = []
  for (const sizeMiB of sizesMiB) {
    try {
      const run = await runOne(sizeMiB)
      log(
        `  ${label(sizeMiB)}: ${Math.round(run.mbPerSec)} MB/s, RSS sender ${mib(run.sender.maxRssKiB)}, receiver ${mib(run.receiver.maxRssKiB)}`,
      )
      out.push(run)
    } catch (err) {
      log(`  ${label(sizeMiB)}: failed: ${(err as Error).message}`)
      out.push({ sizeMiB, failed: (err as Error).message })
    }
  }
  return out
}

const label = (sizeMiB: number) =>
  sizeMiB >= 1024 && sizeMiB % 1024 === 0 ? `${sizeMiB / 1024} GiB` : `${sizeMiB} MiB`
const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`

/** MB/s of the bulk-message rows of the same run, to compare with (undefined: not measured). */
export interface BulkReference {
  parley?: number
  tls?: number
}

export function renderFiles(runs: readonly FileOutcome[], ref: BulkReference): string {
  const ratio = (a: number, b: number | undefined) => (b ? `${(a / b).toFixed(2)}×` : 'n/a')
  const lines = [
    '### File transfer: @parley/files over loopback TCP',
    '',
    'One file of random bytes from a sender process to a receiver process, Noise over TCP on 127.0.0.1, the default settings (2 chunks of 256 KiB in flight, every chunk checked against its leaf hash on arrival). MB/s (10⁶ bytes) from the accepted offer to the last chunk verified and written; "checked" also counts the receiver reading the whole file back against its hashes and renaming it into place. The ratios compare with the bulk-message rows (b) of this run: Parley 65,000-byte messages, and TLS 1.3 (an `scp`-like reference: encrypted bulk bytes, no files). Peak RSS is each process\'s `maxRSS` (its baseline after start-up in brackets): it should not follow the file size.',
    '',
    '| file | MB/s | MB/s checked | ÷ Parley bulk (b) | ÷ TLS 1.3 bulk (b) | sender hashing | sender peak RSS | receiver peak RSS |',
    '| ---- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const r of runs) {
    if ('failed' in r) {
      lines.push(
        `| ${label(r.sizeMiB)} | failed: ${r.failed.replaceAll('|', '\\|').slice(0, 120)} | | | | | | |`,
      )
      continue
    }
    lines.push(
      `| ${label(r.sizeMiB)} | ${Math.round(r.mbPerSec)} | ${Math.round(r.mbPerSecChecked)} | ${ratio(r.mbPerSec, ref.parley)} | ${ratio(r.mbPerSec, ref.tls)} | ${(r.hashMs / 1000).toFixed(2)} s | ${mib(r.sender.maxRssKiB)} (${mib(r.sender.baseRssKiB)}) | ${mib(r.receiver.maxRssKiB)} (${mib(r.receiver.baseRssKiB)}) |`,
    )
  }
  const bulk = [
    ref.parley !== undefined ? `Parley bulk (b) ${Math.round(ref.parley)} MB/s` : undefined,
    ref.tls !== undefined ? `TLS 1.3 bulk (b) ${Math.round(ref.tls)} MB/s` : undefined,
  ].filter((s) => s !== undefined)
  lines.push(
    '',
    bulk.length > 0 ? `In this run: ${bulk.join(', ')}.` : 'The bulk rows were not run: no ratios.',
    '',
  )
  return lines.join('\n')
}

if (process.argv[2] === '--receive') {
  void receive(process.argv[3]!)
} else if (process.argv[2] === '--send') {
  void send(process.argv[3]!, process.argv[4]!)
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { sizes: { type: 'string', default: FILE_SIZES.full.join(',') } } })
  const sizes = parseSizes(values.sizes!)
  runFiles(sizes, (line) => process.stderr.write(`${line}\n`)).then(
    (runs) => process.stdout.write(`${renderFiles(runs, {})}\n`),
    (err: unknown) => {
      process.stderr.write(`files: ${(err as Error).message}\n`)
      process.exit(1)
    },
  )
}

/** `64,256` → [64, 256] (MiB, each 1 to 65,536). @throws Error on anything else */
export function parseSizes(value: string): number[] {
  const sizes = value.split(',').map((s) => Number(s.trim()))
  if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 65_536)) {
    throw new Error('--file-sizes takes MiB as whole numbers, e.g. 256,1024')
  }
  return sizes
}
