/** Runs every example as a user would (`node examples/<file>`) and checks what it prints, so they cannot rot. */
import { execFile } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const dir = fileURLToPath(new URL('../', import.meta.url))

async function runExample(file: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: dir, timeout: 20_000 })
  return stdout.trim().split('\n')
}

const expected: Record<string, string[]> = {
  'two-peers-tcp.mjs': [
    'alice is connected to bob',
    'bob received "hello, bob" from alice',
    'bob acknowledged it: true',
    'bob: alice left (goodbye)',
  ],
  'memory-network.mjs': [
    'broadcast acknowledged by 2 of 2',
    'alice lost carol: connection-lost',
    'send to carol: DIAL_FAILED',
    'dial carol: DIAL_FAILED',
    'dial carol after heal: done',
    'open connections left: 0',
  ],
  'abort-signal.mjs': [
    'connect with a 100 ms deadline: DIAL_FAILED (cause: ABORTED)',
    'send cancelled by the user: ABORTED',
    'send with an aborted signal: ABORTED',
  ],
}

describe('examples', () => {
  it('every example in the folder is checked here', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.mjs'))
    expect(files.sort()).toEqual(Object.keys(expected).sort())
  })

  it.concurrent.each(Object.entries(expected))('%s prints what its comments promise', async (file, lines) => {
    expect(await runExample(file)).toEqual(lines)
  })
})
