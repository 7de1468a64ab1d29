import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { WireVersion } from './wire.js'

// The storm runs in its own process: the initiator's half of hundreds of Noise handshakes costs as
// much CPU as the victim's half, and in the test process it would slow the honest peer being measured.
const STORM_SCRIPT = `
import { EventEmitter } from 'node:events'
import { createConnection } from 'node:net'
import { generateIdentity, noiseUpgrader } from '@parley/core'
import { encodeMessage } from '@parley/protocol'

const { address, wire, concurrency, total, durationMs, sources } = JSON.parse(process.env.PARLEY_STORM)
const colon = address.lastIndexOf(':')
const [host, port] = [address.slice(0, colon), Number(address.slice(colon + 1))]
let nextSource = 0

// Just enough of core's Connection over a socket bound to one of the attacker's source addresses.
class SocketConnection extends EventEmitter {
  status = 'open'
  constructor(socket) {
    super()
    this.socket = socket
    socket.on('data', (chunk) => this.emit('data', chunk))
    socket.on('drain', () => this.emit('drain'))
    socket.on('end', () => this.emit('end'))
    socket.on('error', () => {})
    socket.once('close', () => { this.status = 'closed'; this.emit('close') })
  }
  send(bytes) { return this.status === 'open' && !this.socket.destroyed && this.socket.write(bytes) }
  close() { this.socket.end(); return Promise.resolve() }
  abort() { this.status = 'closed'; if (!this.socket.destroyed) this.socket.resetAndDestroy() }
  pause() { this.socket.pause() }
  resume() { this.socket.resume() }
}

function dial(signal) {
  const localAddress = sources.length > 0 ? sources[nextSource++ % sources.length] : undefined
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port, noDelay: true, allowHalfOpen: true, ...(localAddress ? { localAddress } : {}) })
    const fail = (err) => { socket.destroy(); reject(err) }
    const onAbort = () => fail(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    socket.once('error', fail)
    socket.once('connect', () => {
      socket.off('error', fail)
      signal.removeEventListener('abort', onAbort)
      resolve(new SocketConnection(socket))
    })
  })
}
const counts = { dialed: 0, welcomed: 0, refused: 0, failed: 0 }
const deadline = Date.now() + durationMs
const WELCOME = 0x02

function frame(msg) {
  const inner = encodeMessage(msg)
  const body = wire === 3 ? Buffer.concat([Buffer.from([0]), inner]) : Buffer.from(inner)
  const out = Buffer.alloc(4 + body.length)
  out.writeUInt32BE(body.length, 0)
  body.copy(out, 4)
  return out
}

async function one({ identity, upgrader }) {
  const signal = AbortSignal.timeout(10_000)
  let conn
  try {
    const raw = await dial(signal)
    conn = await upgrader.upgrade(raw, { role: 'initiator', signal })
  } catch {
    counts.failed++
    return
  }
  const capabilities = wire === 3 ? ['parley/chat/1', 'parley/peers/1'] : []
  conn.send(frame({ type: 'HELLO', version: wire, peerId: identity.peerId, name: 'storm', listenAddrs: [], capabilities }))
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, 10_000)
    let settled = false
    const settle = (welcomed) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (welcomed) counts.welcomed++
      else counts.refused++
      resolve()
    }
    conn.once('data', (chunk) => settle(chunk[4 + (wire === 3 ? 1 : 0)] === WELCOME))
    conn.once('close', () => settle(false))
  })
  conn.abort()
}

// One identity per worker, reused for its dials one after another: the attacker signs once, and its
// per-dial cost is the handshake alone, as the victim's is.
async function worker() {
  const identity = generateIdentity()
  const me = { identity, upgrader: noiseUpgrader({ identity }) }
  while (counts.dialed < total && Date.now() < deadline) {
    counts.dialed++
    await one(me)
  }
}
process.stdin.on('close', () => process.exit(0)).resume()
const workers = Array.from({ length: concurrency }, worker)
// Every dial of the first wave is in flight: tell the test the storm is on.
setTimeout(() => process.stdout.write(JSON.stringify({ started: true }) + '\\n'), 500)
await Promise.all(workers)
process.stdout.write(JSON.stringify(counts) + '\\n')
process.exit(0)
`

/** Options of {@link startStorm}. */
export interface StormInit {
  /** The victim's `host:port`. */
  address: string
  /** @default 3 */
  wire?: WireVersion
  /** Dials in flight at once: each a TCP connect, a full Noise handshake and a HELLO. */
  concurrency: number
  /** Dials in all, at most. */
  total: number
  /** No new dial after this long. @default 10_000 ms */
  durationMs?: number
  /** Source addresses the dials take turns on (see attackerHost). @default 127.0.0.1 */
  sources?: string[]
}

/** What the storm got from the victim. */
export interface StormCounts {
  dialed: number
  /** Answered with WELCOME. */
  welcomed: number
  /** Answered with something else, or closed after the handshake. */
  refused: number
  /** The dial or the Noise handshake failed (refused, reset, timed out). */
  failed: number
}

/** A storm of handshakes from a child process; `done` resolves with its counts. */
export interface Storm {
  readonly done: Promise<StormCounts>
  /** Resolves half a second into the storm, once its first wave of dials is in flight. */
  readonly started: Promise<void>
  /** SIGKILL now. Idempotent. */
  kill(): void
}

/** Starts a handshake storm against `address` from a separate process. */
export function startStorm(init: StormInit): Storm {
  const config = { wire: 3, durationMs: 10_000, sources: [], ...init }
  const child = spawn(process.execPath, ['--input-type=module', '-e', STORM_SCRIPT], {
    cwd: fileURLToPath(new URL('../../', import.meta.url)),
    env: { ...process.env, PARLEY_STORM: JSON.stringify(config) },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  child.stdin!.on('error', () => {})
  const lines = createInterface({ input: child.stdout! })
  let onStarted: () => void = () => {}
  const started = new Promise<void>((resolve) => {
    onStarted = resolve
  })
  const done = (async () => {
    let counts: StormCounts | undefined
    lines.on('line', (line) => {
      const msg = JSON.parse(line) as StormCounts | { started: true }
      if ('started' in msg) onStarted()
      else counts = msg
    })
    const [code, signal] = await once(child, 'close')
    if (counts === undefined)
      throw new Error(`the storm process exited (${signal ?? code}) without its counts`)
    return counts
  })()
  done.catch(() => {})
  // A storm that ends before it reports starting still counts as started.
  done.then(onStarted, onStarted)
  return {
    done,
    started,
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    },
  }
}
