import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createPeer, tcpTransport } from '@parley/core'
import { createFileService } from '@parley/files'
import { beforeAll, describe, expect, onTestFinished, test } from 'vitest'
import { type JsonEvent, JsonProgram } from './helpers/json-program.js'
import { throttlingProxy } from './helpers/throttle.js'

const here = fileURLToPath(new URL('..', import.meta.url))
// Built apart from dist/, which e2e.test.ts rebuilds at the same time in another worker.
const out = join(here, 'node_modules', '.cache', 'files-process-test')
const main = join(out, 'main.js')
const MB = 1_000_000

beforeAll(() => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', out], {
    cwd: here,
    stdio: 'pipe',
  })
}, 60_000)

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'parley-files-cli-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Writes `size` random bytes, one MB at a time; returns the file's SHA-256 (computed here, not by Parley). */
async function randomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256')
  const fh = await open(path, 'w')
  try {
    for (let left = size; left > 0; ) {
      const chunk = randomBytes(Math.min(MB, left))
      hash.update(chunk)
      await fh.write(chunk)
      left -= chunk.length
    }
  } finally {
    await fh.close()
  }
  return hash.digest('hex')
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

function listening(p: JsonProgram): Promise<string> {
  return p.waitFor('ready').then((e) => (e.addresses as string[])[0]!)
}

function portOf(address: string): { host: string; port: number } {
  return { host: '127.0.0.1', port: Number(address.split(':').at(-1)) }
}

describe('file transfer between parley processes over TCP', () => {
  test('a 100 MB file arrives identical, and a chat message sent meanwhile arrives while it is still moving', async () => {
    const dir = await tempDir()
    const size = 100 * MB
    const src = join(dir, 'big.bin')
    const digest = await randomFile(src, size)
    const alice = new JsonProgram(main, ['--name', 'alice', '--port', '0'])
    // Paced at 40 MB/s on loopback, so the transfer takes a few seconds on any machine: long enough
    // for a message to be sent while it runs, whatever the machine's speed.
    const proxy = await throttlingProxy(portOf(await listening(alice)), 40 * MB)
    const downloads = join(dir, 'in')
    const bob = new JsonProgram(main, [
      '--name',
      'bob',
      '--port',
      '0',
      '--accept-files',
      '--downloads',
      downloads,
      '--peer',
      proxy.address,
    ])
    await bob.waitFor('connected')
    await alice.waitFor('peer:connect')

    alice.line(`send-file bob ${src}`)
    await bob.waitFor('file:progress', (e) => (e.bytes as number) > 0 && (e.bytes as number) < size, {
      timeout: 30_000,
    })
    alice.line('send bob still here?')
    const message = await bob.waitFor('message', (e) => e.text === 'still here?')
    const done = await bob.waitFor('file:done', () => true, { timeout: 60_000 })
    // The message came while the file was still in flight: bob reported progress (only sent for an
    // unfinished file) after it. A message queued behind the file's data would come after the last one.
    const after = bob.events.slice(bob.events.indexOf(message) + 1, bob.events.indexOf(done))
    expect(after.filter((e) => e.type === 'file:progress').length).toBeGreaterThan(0)

    expect(done).toMatchObject({ name: 'big.bin', size, resumed: 0 })
    expect(dirname(done.path as string)).toBe(downloads)
    expect(await sha256(done.path as string)).toBe(digest)
    await alice.waitFor('file:sent', (e) => e.size === size)
    // Progress is throttled: at most 4 a second (one per 250 ms), not one per chunk.
    const progress = bob.events.filter((e) => e.type === 'file:progress')
    const span =
      (Date.parse(progress.at(-1)!.time as string) - Date.parse(progress[0]!.time as string)) / 1000
    expect(progress.length).toBeGreaterThan(1)
    expect(progress.length).toBeLessThanOrEqual(Math.floor(span * 4) + 2)
    await rm(src)
    await rm(done.path as string)

    bob.line('quit')
    expect(await bob.exited()).toBe(0)
    alice.line('quit')
    expect(await alice.exited()).toBe(0)
  }, 120_000)

  test('the receiver killed halfway resumes after a restart with the same --data-dir, without fetching again what it had', async () => {
    const dir = await tempDir()
    const size = 48 * MB
    const src = join(dir, 'movie.mkv')
    const digest = await randomFile(src, size)
    const alice = new JsonProgram(main, ['--name', 'alice', '--port', '0'])
    const proxy = await throttlingProxy(portOf(await listening(alice)), 16 * MB)
    const downloads = join(dir, 'in')
    const data = join(dir, 'bob-data')
    const bobArgs = ['--name', 'bob', '--port', '0', '--data-dir', data, '--downloads', downloads]
    const bob = new JsonProgram(main, [...bobArgs, '--accept-files', '--peer', proxy.address])
    await bob.waitFor('connected')
    await alice.waitFor('peer:connect')

    alice.line(`send-file bob ${src}`)
    const started = await bob.waitFor('file:started')
    expect(started.resumed).toBe(0)
    await bob.waitFor('file:progress', (e) => (e.bytes as number) >= size / 2, { timeout: 30_000 })
    // Hold the data (not the connection) so the file cannot finish before bob is killed, however slow the machine.
    proxy.pause()
    // The verified bitmap is saved at most once a second: wait until the saved state claims chunks.
    const statePath = join(data, 'files', `${started.root as string}.json`)
    let saved = 0
    for (let i = 0; i < 100 && saved === 0; i++) {
      saved = await savedBytes(statePath, size).catch(() => 0)
      if (saved === 0) await new Promise((r) => setTimeout(r, 100))
    }
    expect(saved).toBeGreaterThan(0)
    const lastBefore = Math.max(
      ...bob.events.filter((e) => e.type === 'file:progress').map((e) => e.bytes as number),
    )
    bob.kill('SIGKILL')
    await bob.exited()
    expect(bob.events.some((e) => e.type === 'file:done')).toBe(false)
    proxy.resume()

    // Back under the same key, without --accept-files: the download accepted before resumes by itself.
    const again = new JsonProgram(main, [...bobArgs, '--peer', proxy.address])
    const resumed = await again.waitFor('file:started', () => true, { timeout: 30_000 })
    expect(resumed.root).toBe(started.root)
    expect(resumed.resumed as number).toBeGreaterThanOrEqual(saved)
    expect(resumed.resumed as number).toBeLessThanOrEqual(lastBefore)
    const done = await again.waitFor('file:done', () => true, { timeout: 60_000 })
    // What this run fetched is what was missing, not the whole file again.
    expect(done.resumed).toBe(resumed.resumed)
    const progress = again.events.filter((e) => e.type === 'file:progress').map((e) => e.bytes as number)
    expect(Math.min(...progress)).toBeGreaterThanOrEqual(resumed.resumed as number)
    expect(again.events.some((e) => e.type === 'file:offer')).toBe(false)
    expect(basename(done.path as string)).toBe('movie.mkv')
    expect(await sha256(done.path as string)).toBe(digest)
    expect((await readdir(downloads)).sort()).toEqual(['movie.mkv'])
    again.line('quit')
    expect(await again.exited()).toBe(0)
  }, 120_000)

  test('hostile names from a sender stay inside the download folder, and an existing file is never overwritten', async () => {
    const dir = await tempDir()
    const downloads = join(dir, 'deep', 'in')
    await mkdir(downloads, { recursive: true })
    await writeFile(join(downloads, 'notes.txt'), 'mine, keep me')
    const bob = new JsonProgram(main, [
      '--name',
      'bob',
      '--port',
      '0',
      '--accept-files',
      '--downloads',
      downloads,
    ])
    const bobAddress = await listening(bob)

    // The test process is the sender: a library peer that offers files under names it chooses.
    const files = createFileService()
    const mallory = createPeer({
      transport: tcpTransport(),
      name: 'mallory',
      listen: '127.0.0.1:0',
      services: [files],
    })
    onTestFinished(async () => {
      await files.close()
      await mallory.stop()
    })
    await mallory.start()
    const info = await mallory.connect(bobAddress)
    await bob.waitFor('peer:connect')

    const names = ['../../x', '/etc/passwd', 'con', 'evil\x1b[2J\x07\u202etxt.exe', '..', 'notes.txt']
    const results = new Map<string, JsonEvent>()
    for (const [i, name] of names.entries()) {
      const path = join(dir, `src-${i}`)
      await writeFile(path, `content ${i} `.repeat(100))
      const from = bob.mark()
      const t = await files.offer(info.id, path, { name })
      const done = await bob.waitFor('file:done', (e) => e.root === t.root, { from })
      await t.finished
      results.set(name, done)
    }
    for (const [i, name] of names.entries()) {
      const path = results.get(name)!.path as string
      expect(dirname(path), name).toBe(downloads)
      expect(await readFile(path, 'utf8')).toBe(`content ${i} `.repeat(100))
    }
    const saved = (n: string) => basename(results.get(n)!.path as string)
    expect(saved('../../x')).toBe('x')
    expect(saved('/etc/passwd')).toBe('passwd')
    expect(saved('con')).toBe('_con')
    expect(saved('evil\x1b[2J\x07\u202etxt.exe')).not.toMatch(/[\x00-\x1f\u202e]/)
    expect(saved('..')).toBe('file')
    // The file that was there first is untouched; the new one got a free name, and the event says so.
    expect(await readFile(join(downloads, 'notes.txt'), 'utf8')).toBe('mine, keep me')
    expect(results.get('notes.txt')).toMatchObject({ name: 'notes (1).txt', wanted: 'notes.txt' })
    // Nothing was written next to or above the download folder.
    expect((await readdir(join(dir, 'deep'))).sort()).toEqual(['in'])
    expect((await readdir(dir)).filter((n) => !n.startsWith('src-')).sort()).toEqual(['deep'])
  }, 60_000)
})

/** Bytes the saved download state claims as verified (its bitmap, counted here). */
async function savedBytes(statePath: string, size: number): Promise<number> {
  const state = JSON.parse(await readFile(statePath, 'utf8')) as { verified: string; chunkSize: number }
  const bits = Buffer.from(state.verified, 'base64')
  let bytes = 0
  for (let i = 0; i * state.chunkSize < size; i++) {
    if ((bits[i >> 3]! >> (i & 7)) & 1) bytes += Math.min(state.chunkSize, size - i * state.chunkSize)
  }
  return bytes
}
