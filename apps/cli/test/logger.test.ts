import { execFileSync } from 'node:child_process'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fileLogger } from '../src/logger.js'

describe('the log file', () => {
  it('appends one JSON line per event, in order', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'parley-log-')), 'peer.log')
    const logger = fileLogger(path, 'info', () => {})
    logger.log('info', 'first')
    logger.log('debug', 'below the level')
    logger.log('warn', 'second', { n: 2 })
    await logger.flush()
    const lines = (await readFile(path, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines.map((l) => l.event)).toEqual(['first', 'second'])
    expect(lines[1]).toMatchObject({ level: 'warn', n: 2 })
  })

  it('a named pipe nobody reads fails at once and turns logging off, so quitting never waits on it', async () => {
    const fifo = join(await mkdtemp(join(tmpdir(), 'parley-log-')), 'pipe')
    execFileSync('mkfifo', [fifo])
    const errors: unknown[] = []
    const logger = fileLogger(fifo, 'info', (err) => errors.push(err))
    logger.log('info', 'hello')
    await logger.flush()
    expect(errors).toHaveLength(1)
  })
})
