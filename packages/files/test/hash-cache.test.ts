import { execFileSync } from 'node:child_process'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { HashCache } from '../src/hash-cache.js'
import { hashFile } from '../src/index.js'
import { randomFile, tempDir } from './helpers.js'

const MiB = 1024 * 1024

describe('hash cache', () => {
  it('a caller right after the last waiter aborted gets the hashes, not that abort', async () => {
    const dir = await tempDir()
    const path = await randomFile(join(dir, 'big.bin'), 64 * MiB)
    const cache = new HashCache()
    const ac = new AbortController()
    const first = cache.get(path, 16 * MiB, ac.signal)
    // Queued behind the cache's own stat: once it is back, the first caller waits on the hashing.
    await stat(path)
    ac.abort()
    await expect(first).rejects.toMatchObject({ code: 'CANCELLED' })
    // The aborted hashing is still reading its chunk: this caller must not join it.
    const second = await cache.get(path, 16 * MiB)
    expect(second.root.equals((await hashFile(path, { chunkSize: 16 * MiB })).root)).toBe(true)
  })

  it('a file that cannot be offered says why in `reason`: no such file, a folder, not a regular file', async () => {
    const dir = await tempDir()
    const cache = new HashCache()
    await expect(cache.get(join(dir, 'gone.bin'), MiB)).rejects.toMatchObject({
      code: 'BAD_FILE',
      reason: 'missing',
    })
    await expect(cache.get(dir, MiB)).rejects.toMatchObject({ code: 'BAD_FILE', reason: 'folder' })
    await expect(hashFile('/dev/null')).rejects.toMatchObject({ code: 'BAD_FILE', reason: 'not-regular' })
  })

  it('a named pipe is refused as not a regular file, at once: its open does not wait for a writer', async () => {
    const fifo = join(await tempDir(), 'pipe')
    execFileSync('mkfifo', [fifo])
    await expect(new HashCache().get(fifo, MiB)).rejects.toMatchObject({
      code: 'BAD_FILE',
      reason: 'not-regular',
    })
  })
})
