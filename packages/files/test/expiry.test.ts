import { readdir, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createFileService } from '../src/index.js'
import { tempDir } from './helpers.js'

const DAY = 24 * 3_600_000

describe('partial downloads', () => {
  it('one that made no progress for partExpiry (30 days) is removed when the service starts, and nothing else', async () => {
    const downloads = await tempDir()
    const dataDir = await tempDir()
    const state = async (root: string, name: string, daysOld: number) => {
      const finalPath = join(downloads, name)
      const partPath = `${finalPath}.parley-part`
      await writeFile(partPath, 'partial')
      const json = join(dataDir, `${root}.json`)
      const s = { version: 1, root, name, size: 10, chunkSize: 32_768, partPath, finalPath, verified: 'AA==' }
      await writeFile(json, JSON.stringify(s))
      const then = new Date(Date.now() - daysOld * DAY)
      await utimes(partPath, then, then)
      await utimes(json, then, then)
    }
    await state('a'.repeat(64), 'old.bin', 40)
    await state('b'.repeat(64), 'recent.bin', 2)
    // Old, but not ours to remove: a part file no state names, and a file a bogus state points at.
    const stray = join(downloads, 'stray.bin.parley-part')
    await writeFile(stray, 'x')
    await utimes(stray, new Date(0), new Date(0))
    const bogus = join(dataDir, `${'c'.repeat(64)}.json`)
    await writeFile(
      bogus,
      JSON.stringify({ version: 1, root: 'c'.repeat(64), partPath: join(downloads, 'keep.txt') }),
    )
    await writeFile(join(downloads, 'keep.txt'), 'mine')
    await utimes(bogus, new Date(0), new Date(0))
    const files = createFileService({ downloads, dataDir })
    await files.close()
    expect((await readdir(downloads)).sort()).toEqual([
      'keep.txt',
      'recent.bin.parley-part',
      'stray.bin.parley-part',
    ])
    expect((await readdir(dataDir)).sort()).toEqual([`${'b'.repeat(64)}.json`])
  })
})
