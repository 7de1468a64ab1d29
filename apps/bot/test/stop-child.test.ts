import { fork } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { stopChild } from '../src/swarm/processes.js'

/** Blocks this thread, with no event-loop turn, until process `pid` has exited (a zombie); at most 5 s. */
function blockUntilExited(pid: number): boolean {
  const pause = new Int32Array(new SharedArrayBuffer(4))
  for (let i = 0; i < 1_000; i++) {
    // /proc/PID/stat: "pid (comm) S ...", the state letter after the command's closing parenthesis.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    if (stat[stat.lastIndexOf(')') + 2] === 'Z') return true
    Atomics.wait(pause, 0, 0, 5)
  }
  return false
}

describe('stopping a swarm worker', () => {
  let dir: string | undefined
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('is no error when the worker exited on its own and its channel has closed unnoticed', async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-bot-stop-'))
    const script = join(dir, 'exits.cjs')
    writeFileSync(script, "process.send('up'); setTimeout(() => process.exit(0), 20)")
    const proc = fork(script, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    const errors: string[] = []
    proc.on('error', (err) => errors.push(err.message))
    await once(proc, 'message')
    // The worker exits while we cannot see it: the channel still looks open, and a send to it fails.
    expect(blockUntilExited(proc.pid!)).toBe(true)
    expect(proc.connected).toBe(true)
    await stopChild(proc)
    expect(proc.exitCode).toBe(0)
    expect(errors).toEqual([])
  })
})
