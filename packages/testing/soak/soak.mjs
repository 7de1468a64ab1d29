// The soak coordinator: forks N peer processes (soak-peer.mjs) that talk over real TCP on 127.0.0.1,
// runs a warm-up and a main phase of sends, and measures the long-lived observer's heap after GC at
// the end of each. Used by `pnpm soak` (run.mjs) and, in a short version, by `pnpm test`.
import { fork } from 'node:child_process'

const PEER = new URL('./soak-peer.mjs', import.meta.url)

/** @param {import('./soak.d.mts').SoakOptions} options */
export async function runSoak(options = {}) {
  const processes = options.processes ?? 20
  const messages = options.messages ?? 500
  const window = options.window ?? 32
  const textBytes = options.textBytes ?? 64
  const warmup = Math.max(1, Math.round(messages * (options.warmupShare ?? 0.2)))
  const seed = options.seed ?? (Math.random() * 4_294_967_296) >>> 0
  const deadline = AbortSignal.timeout(options.timeoutMs ?? 120_000)
  const log = options.log ?? (() => {})
  const started = performance.now()

  /** @type {import('node:child_process').ChildProcess[]} */
  const children = []
  /** Messages from children, by type, in arrival order. */
  const inbox = new Map()
  const waiters = new Set()
  let failure
  let stopping = false
  /** Resolves on the next message from any child (or failure). */
  const changed = () => new Promise((resolve) => waiters.add(resolve))
  const wake = () => {
    for (const w of waiters) w()
    waiters.clear()
  }
  const fail = (err) => {
    failure ??= err
    wake()
  }
  const onAbort = () => fail(new Error(`the soak did not finish within ${options.timeoutMs ?? 120_000} ms`))
  deadline.addEventListener('abort', onAbort, { once: true })

  /** Waits until every child has sent one message of `type` (beyond those already taken). */
  const collect = async (type) => {
    for (;;) {
      if (failure) throw failure
      const got = inbox.get(type) ?? []
      if (got.length >= processes) {
        inbox.set(type, got.slice(processes))
        return got.slice(0, processes).sort((a, b) => a.index - b.index)
      }
      await changed()
    }
  }
  /** Takes the next message of `type` from any child. */
  const take = async (type) => {
    for (;;) {
      if (failure) throw failure
      const got = inbox.get(type) ?? []
      if (got.length > 0) return got.shift()
      await changed()
    }
  }
  const broadcast = (cmd) => {
    for (const c of children) c.send(cmd)
  }

  try {
    for (let index = 0; index < processes; index++) {
      const child = fork(PEER, [], {
        execArgv: ['--expose-gc'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: {
          ...process.env,
          SOAK_INDEX: String(index),
          SOAK_PROCESSES: String(processes),
          SOAK_MESSAGES: String(messages),
          SOAK_WINDOW: String(window),
          SOAK_TEXT_BYTES: String(textBytes),
        },
      })
      children.push(child)
      child.on('message', (msg) => {
        if (msg.type === 'failed') return fail(new Error(`soak peer ${msg.index} failed: ${msg.error}`))
        const list = inbox.get(msg.type) ?? []
        list.push(msg)
        inbox.set(msg.type, list)
        wake()
      })
      child.on('exit', (code, signal) => {
        if (code !== 0 && !stopping)
          fail(new Error(`soak peer ${index} exited early (code ${code}, signal ${signal})`))
      })
    }
    const ready = await collect('ready')
    if (!ready[0].gc) throw new Error('the observer runs without --expose-gc')
    log(`${processes} processes up after ${ms(started)}`)
    const peers = ready.map((r) => ({ index: r.index, id: r.id, address: r.address }))
    for (const [i, c] of children.entries()) c.send({ cmd: 'connect', peers, seed: (seed + i) >>> 0 })
    await collect('connected')
    log(`full mesh after ${ms(started)}`)

    const phase = async (from, to) => {
      const t = performance.now()
      broadcast({ cmd: 'send', from, to })
      const sent = await collect('sent')
      children[0].send({ cmd: 'measure' })
      const measured = await take('measured')
      return { sent, measured, ms: performance.now() - t }
    }
    const warm = await phase(0, warmup)
    log(
      `warm-up: ${warmup} × ${processes} in ${Math.round(warm.ms)} ms; observer heap ${mib(warm.measured.heapUsed)}`,
    )
    const main = await phase(warmup, messages)
    log(
      `main: ${messages - warmup} × ${processes} in ${Math.round(main.ms)} ms; observer heap ${mib(main.measured.heapUsed)}`,
    )
    broadcast({ cmd: 'report' })
    const reports = await collect('report')
    stopping = true
    broadcast({ cmd: 'stop' })
    await collect('stopped')
    await Promise.all(
      children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)),
    )

    const failed = {}
    let acked = 0
    for (const s of [...warm.sent, ...main.sent]) {
      acked += s.acked
      for (const [code, n] of Object.entries(s.failed)) failed[code] = (failed[code] ?? 0) + n
    }
    const observerReceived = [warm.measured.received, main.measured.received]
    return {
      seed,
      processes,
      messagesPerProcess: messages,
      sent: processes * messages,
      acked,
      failed,
      received: reports.reduce((n, r) => n + r.received, 0),
      duplicates: reports.reduce((n, r) => n + r.duplicates + r.foreign, 0),
      disconnects: reports.reduce((n, r) => n + r.disconnects, 0),
      /** Fewest peers any process was connected to at the end (processes - 1 in a full mesh). */
      minConnected: Math.min(...reports.map((r) => r.connected)),
      seconds: (performance.now() - started) / 1000,
      sendSeconds: (warm.ms + main.ms) / 1000,
      observer: {
        messagesAtCheckpoints: [warmup + observerReceived[0], messages + observerReceived[1]],
        heapUsedAtCheckpoints: [warm.measured.heapUsed, main.measured.heapUsed],
      },
    }
  } finally {
    deadline.removeEventListener('abort', onAbort)
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  }
}

function ms(since) {
  return `${Math.round(performance.now() - since)} ms`
}

function mib(bytes) {
  return `${(bytes / 1_048_576).toFixed(2)} MiB`
}
