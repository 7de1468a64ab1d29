import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

// The victim: a real peer (default settings unless told otherwise) in its own OS process, so its
// memory and its event loop are its own. It speaks JSON lines: one `ready` line on stdout, then one
// `stats` line for every `{"op":"stats"}` line on stdin. SIGTERM stops the peer gracefully and exits 0.
const VICTIM_SCRIPT = `
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { createPeer, tcpTransport } from '@parley/core'

const init = JSON.parse(process.env.PARLEY_VICTIM_INIT || '{}')
const peer = createPeer({ transport: tcpTransport(), listen: '127.0.0.1:0', name: 'victim', ...init })
const errors = {}
peer.on('error', (e) => { errors[e.code] = (errors[e.code] ?? 0) + 1 })
let messages = 0
const from = new Map()
peer.on('message', (m) => {
  messages++
  if (from.size < 10000 || from.has(m.from.id)) from.set(m.from.id, (from.get(m.from.id) ?? 0) + 1)
})
const lag = monitorEventLoopDelay({ resolution: 10 })
lag.enable()
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n')
const stats = (ids) => {
  const mem = process.memoryUsage()
  const s = {
    rss: mem.rss, heapUsed: mem.heapUsed, external: mem.external, arrayBuffers: mem.arrayBuffers,
    lagMaxMs: lag.max / 1e6, connected: peer.peers().connected.length, messages, errors,
    from: Object.fromEntries(ids.map((id) => [id, from.get(id) ?? 0])),
  }
  lag.reset()
  return s
}
await peer.start()
out({ type: 'ready', id: peer.id, address: peer.addresses[0], stats: stats([]) })
createInterface({ input: process.stdin })
  .on('line', (line) => {
    let req
    try { req = JSON.parse(line) } catch { return }
    if (req.op === 'stats') out({ type: 'stats', seq: req.seq, stats: stats(req.from ?? []) })
  })
  // The test process went away without stopping us.
  .on('close', () => process.exit(0))
let stopping = false
process.on('SIGTERM', () => {
  if (stopping) return
  stopping = true
  peer.stop().then(() => process.exit(0), () => process.exit(1))
})
`

/** What the victim reports about itself. */
export interface VictimStats {
  /** process.memoryUsage() of the victim. */
  rss: number
  heapUsed: number
  external: number
  arrayBuffers: number
  /** The longest event-loop delay since the previous report, in ms. */
  lagMaxMs: number
  /** Peers connected now. */
  connected: number
  /** Messages delivered to the victim's application so far. */
  messages: number
  /** `error` events so far, by code. */
  errors: Record<string, number>
  /** Messages delivered so far from each peer id asked about. */
  from: Record<string, number>
}

/** Options of {@link startVictim}. */
export interface VictimInit {
  /** JSON-able PeerInit fields on top of the defaults (tcp, 127.0.0.1:0, name 'victim'). @default none */
  peer?: Record<string, unknown>
  /**
   * A safety net, not an assertion: the victim is SIGKILLed once its RSS grows this many bytes past
   * where it started (read from /proc, so even a victim whose event loop is stuck is caught).
   * @default 1 GiB
   */
  killAboveGrowth?: number
  /** @default 10_000 ms */
  startTimeout?: number
}

/** A running victim process. */
export interface Victim {
  readonly id: string
  readonly address: string
  readonly pid: number
  /** The report it printed when ready. */
  readonly initial: VictimStats
  /** Asks for a report; rejects when the victim does not answer within `timeout` (default 2 s). */
  stats(options?: { timeout?: number; from?: string[] }): Promise<VictimStats>
  /**
   * The victim's resident set size now, in bytes, read from /proc/<pid>/status: it needs nothing from
   * the victim's event loop. Falls back to the last report where /proc is missing.
   */
  rss(): number
  /** Largest RSS seen by the safety-net watchdog so far. */
  peakRss(): number
  /** Set when the safety net killed it for its memory. */
  readonly killedForMemory: boolean
  /** Whether the process has exited. */
  exited(): boolean
  /**
   * SIGTERM, then waits up to `timeout` ms (default 5 s) for it to exit.
   * @returns its exit code
   * @throws Error when it does not exit in time (it is then SIGKILLed)
   */
  terminate(timeout?: number): Promise<number | null>
  /** SIGKILL now, if still running. Idempotent: use it in cleanup. */
  kill(): void
}

const TESTING_PACKAGE = fileURLToPath(new URL('../../', import.meta.url))
const WATCH_EVERY = 50

/** Starts a victim peer in a child process and waits for its address. */
export async function startVictim(init: VictimInit = {}): Promise<Victim> {
  // cwd is the testing package, so the script's `import '@parley/core'` resolves to the workspace's core.
  // V8's young generation is capped at Node 20's size (16 MiB semi-spaces): Node 24's V8 lets it grow
  // to several times that under any allocation burst, a one-off of the runtime that would otherwise
  // count as the attack's growth. What the budget is for is growth that follows the attacker.
  const child = spawn(
    process.execPath,
    ['--max-semi-space-size=16', '--input-type=module', '-e', VICTIM_SCRIPT],
    {
      cwd: TESTING_PACKAGE,
      env: { ...process.env, PARLEY_VICTIM_INIT: JSON.stringify(init.peer ?? {}) },
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  )
  let exited = false
  const exit = once(child, 'exit').then(([code]) => {
    exited = true
    return code as number | null
  })
  const lines = createInterface({ input: child.stdout! })
  const waiting = new Map<number, (s: VictimStats) => void>()
  let ready: ((r: { id: string; address: string; stats: VictimStats }) => void) | undefined
  lines.on('line', (line) => {
    let msg: { type: string; seq?: number; id: string; address: string; stats: VictimStats }
    try {
      msg = JSON.parse(line)
    } catch {
      return
    }
    if (msg.type === 'ready') ready?.(msg)
    else if (msg.type === 'stats' && msg.seq !== undefined) waiting.get(msg.seq)?.(msg.stats)
  })
  const startTimeout = init.startTimeout ?? 10_000
  let hello: { id: string; address: string; stats: VictimStats }
  try {
    hello = await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the victim printed no address within ${startTimeout} ms`)),
        startTimeout,
      )
      ready = (r) => {
        clearTimeout(timer)
        resolve(r)
      }
      void exit.then((code) => {
        clearTimeout(timer)
        reject(new Error(`the victim exited (code ${code}) before printing its address`))
      })
    })
  } catch (err) {
    if (!exited) child.kill('SIGKILL')
    throw err
  }

  let last = hello.stats
  let peak = last.rss
  let killedForMemory = false
  const limit = hello.stats.rss + (init.killAboveGrowth ?? 1024 * 1024 * 1024)
  const readRss = (): number => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
      const kb = /VmRSS:\s+(\d+) kB/.exec(status)
      if (kb) return Number(kb[1]) * 1024
    } catch {
      // No /proc (or the process is gone): the last report will do.
    }
    return last.rss
  }
  const watchdog = setInterval(() => {
    if (exited) return clearInterval(watchdog)
    const rss = readRss()
    peak = Math.max(peak, rss)
    if (rss > limit) {
      killedForMemory = true
      child.kill('SIGKILL')
    }
  }, WATCH_EVERY)
  watchdog.unref()
  void exit.then(() => clearInterval(watchdog))

  let seq = 0
  const victim: Victim = {
    id: hello.id,
    address: hello.address,
    pid: child.pid!,
    initial: hello.stats,
    get killedForMemory() {
      return killedForMemory
    },
    async stats(options = {}) {
      const timeout = options.timeout ?? 2_000
      if (exited)
        throw new Error(`the victim is gone${killedForMemory ? ' (killed: RSS over the safety net)' : ''}`)
      const id = ++seq
      const answer = new Promise<VictimStats>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id)
          reject(
            new Error(
              `the victim did not answer a stats request within ${timeout} ms: its event loop is stuck`,
            ),
          )
        }, timeout)
        waiting.set(id, (s) => {
          clearTimeout(timer)
          waiting.delete(id)
          resolve(s)
        })
      })
      child.stdin!.write(`${JSON.stringify({ op: 'stats', seq: id, from: options.from ?? [] })}\n`)
      last = await answer
      peak = Math.max(peak, last.rss)
      return last
    },
    rss() {
      const rss = readRss()
      peak = Math.max(peak, rss)
      return rss
    },
    peakRss: () => peak,
    exited: () => exited,
    async terminate(timeout = 5_000) {
      if (exited) return exit
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), timeout)
      const started = Date.now()
      const code = await exit
      clearTimeout(timer)
      if (Date.now() - started >= timeout) throw new Error(`the victim ignored SIGTERM for ${timeout} ms`)
      return code
    },
    kill() {
      if (!exited) child.kill('SIGKILL')
      child.stdin?.destroy()
    },
  }
  child.stdin!.on('error', () => {})
  return victim
}
