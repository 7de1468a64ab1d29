import { type ChildProcess, fork } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { BotError } from '../errors.js'
import { seededRandom } from './topology.js'

/** Most bots a multi-process swarm may run. */
export const MAX_PROCESS_SWARM_SIZE = 10_000
/** Most child processes. */
export const MAX_PROCESSES = 64

/** Options of {@link runProcessSwarm}. */
export interface ProcessSwarmInit {
  /** Bots in all, spread evenly over the processes. */
  count: number
  /** Child processes to run them in. */
  processes: number
  /** Address the bots listen on. @default '127.0.0.1' */
  host?: string
  /** Mesh neighbours per bot. @default 6 */
  activeSize?: number
  /** Broadcasts from random bots once the overlay is formed, one after the other. @default 2 */
  broadcasts?: number
  /** Seeds contacts, origins and each mesh's random choices. @default 1 */
  seed?: number
  /** Wall-clock budget of the whole run, in ms; phases not done in it are cut short. @default 360_000 */
  timeLimit?: number
  /** Plaintext upgrader instead of Noise (spares the handshakes' CPU). @default false */
  plaintext?: boolean
  /** One line of progress. */
  onProgress?: (line: string) => void
}

/** What a multi-process swarm measured. */
export interface ProcessSwarmSummary {
  bots: number
  processes: number
  /** From the first join until every bot has a neighbour and the neighbours connect everyone; undefined when not formed in time. */
  formationSeconds: number | undefined
  /** Sessions in all (each counted once) and the most any bot held. */
  links: number
  maxDegree: number
  /** Most mesh neighbours any bot held. */
  maxActive: number
  /** Handshakes that timed out, dials that failed (contacts and connect-to-active), peers not dialed. */
  handshakeTimeouts: number
  dialFailures: number
  skipped: number
  /** Per broadcast: fraction of the other bots that received it. */
  reach: number[]
  /** Open file descriptors of each child process (/proc/<pid>/fd), after the broadcasts. */
  fds: number[]
  /** Resident memory of each child, MB, and per bot (sum / bots). */
  rssMB: number[]
  rssPerPeerMB: number
  /** False when the time limit cut a phase short (`phase` says which). */
  completed: boolean
  phase: string
  elapsedSeconds: number
}

interface Child {
  readonly proc: ChildProcess
  readonly indices: number[]
  /** Resolvers waiting for a message type. */
  readonly waiting: Map<string, Array<(msg: ChildMessage) => void>>
  failed?: string
}

interface ChildStatus {
  /** Per bot: its mesh neighbours and every peer it has a session with (gossip flows over both). */
  bots: { i: number; id: string; active: string[]; linked: string[] }[]
  probes: Record<string, number>
  rss: number
  counts: { handshakeTimeouts: number; dialFailures: number; skipped: number; dialed: number }
}

type ChildMessage = { type: string; [k: string]: unknown }

const WORKER = new URL('../../scripts/swarm-worker.mjs', import.meta.url)

/**
 * Runs `count` mesh bots in `processes` child processes over TCP, measured as the issue's table was:
 * every bot dials one random earlier bot (up to four others if that fails), then all call `connectToActive()` at once; once the overlay
 * is formed, `broadcasts` broadcasts from random bots, each one's reach counted in every process.
 *
 * @throws BotError `USAGE` for a bad count or number of processes
 */
export async function runProcessSwarm(init: ProcessSwarmInit): Promise<ProcessSwarmSummary> {
  const began = Date.now()
  const { count, processes } = init
  if (!Number.isInteger(count) || count < 2 || count > MAX_PROCESS_SWARM_SIZE) {
    throw new BotError('USAGE', `a swarm over processes runs 2 to ${MAX_PROCESS_SWARM_SIZE} bots`)
  }
  if (!Number.isInteger(processes) || processes < 1 || processes > Math.min(MAX_PROCESSES, count)) {
    throw new BotError(
      'USAGE',
      `--processes must be a whole number from 1 to ${Math.min(MAX_PROCESSES, count)}`,
    )
  }
  const progress = init.onProgress ?? (() => {})
  const deadline = began + (init.timeLimit ?? 360_000)
  const random = seededRandom(init.seed ?? 1)
  const children: Child[] = Array.from({ length: processes }, (_, k) => spawnChild(k, count, processes))
  const owner = new Map<number, Child>()
  for (const c of children) for (const i of c.indices) owner.set(i, c)
  const summary: ProcessSwarmSummary = {
    bots: count,
    processes,
    formationSeconds: undefined,
    links: 0,
    maxDegree: 0,
    maxActive: 0,
    handshakeTimeouts: 0,
    dialFailures: 0,
    skipped: 0,
    reach: [],
    fds: [],
    rssMB: [],
    rssPerPeerMB: 0,
    completed: false,
    phase: 'start',
    elapsedSeconds: 0,
  }
  const left = () => deadline - Date.now()
  try {
    await Promise.all(children.map((c) => next(c, 'ready', left())))
    const addrs = new Map<number, string>()
    await Promise.all(
      children.map(async (c) => {
        c.proc.send({
          type: 'start',
          indices: c.indices,
          host: init.host ?? '127.0.0.1',
          activeSize: init.activeSize ?? 6,
          seed: init.seed ?? 1,
          plaintext: init.plaintext === true,
        })
        const msg = await next(c, 'started', left())
        for (const [i, a] of msg.addrs as [number, string][]) addrs.set(i, a)
      }),
    )
    progress(`${count} bots listening in ${processes} processes`)

    summary.phase = 'formation'
    const joinStart = Date.now()
    for (const c of children) {
      // Five random earlier bots each: the first is dialed, the others if it fails (as a user would retry).
      const contacts = c.indices
        .filter((i) => i > 0)
        .map((i) => [i, [0, 1, 2, 3, 4].map(() => addrs.get(Math.floor(random() * i))!)] as const)
      c.proc.send({ type: 'join', contacts })
    }
    await Promise.all(children.map((c) => next(c, 'joined', left())))
    progress(`every bot dialed its contact and ran connect-to-active in ${seconds(joinStart)} s`)
    let statuses = await poll(children, left())
    while (!formed(statuses, count)) {
      if (left() <= 0) throw new BotError('ABORTED', 'the overlay did not form in time')
      progress(
        `forming: ${isolated(statuses)} bots without a neighbour, ${components(statuses, 'linked')} parts (${components(statuses, 'active')} by mesh neighbours alone) (${seconds(joinStart)} s)`,
      )
      await sleep(Math.min(2_000, left()))
      statuses = await poll(children, left())
    }
    summary.formationSeconds = Number(seconds(joinStart))
    progress(`formed in ${summary.formationSeconds} s`)

    summary.phase = 'broadcasts'
    for (let b = 0; b < (init.broadcasts ?? 2); b++) {
      const origin = Math.floor(random() * count)
      const tag = `probe ${b} from bot-${origin}`
      const c = owner.get(origin)!
      c.proc.send({ type: 'broadcast', index: origin, tag })
      await next(c, 'broadcasted', left())
      // Wait for the count to reach everyone, or to stop growing for 5 s.
      let got = 0
      let grewAt = Date.now()
      for (;;) {
        statuses = await poll(children, left())
        const now = statuses.reduce((n, s) => n + (s.probes[tag] ?? 0), 0)
        if (now > got) {
          got = now
          grewAt = Date.now()
        }
        if (got >= count - 1 || Date.now() - grewAt > 5_000 || left() <= 0) break
        await sleep(250)
      }
      summary.reach.push(Math.round((got / (count - 1)) * 10_000) / 10_000)
      progress(`broadcast ${b + 1} from bot-${origin} reached ${got} of ${count - 1}`)
    }
    summary.completed = true
    summary.phase = 'done'
  } catch (err) {
    const failed = children.find((c) => c.failed)?.failed
    progress(`stopped in phase ${summary.phase}: ${failed ?? (err as Error).message}`)
  }
  try {
    const statuses = await poll(children, 10_000)
    const sessions = statuses.flatMap((s) => s.bots.map((b) => b.linked.length))
    summary.links = Math.round(sessions.reduce((a, b) => a + b, 0) / 2)
    summary.maxDegree = Math.max(0, ...sessions)
    summary.maxActive = Math.max(0, ...statuses.flatMap((s) => s.bots.map((b) => b.active.length)))
    for (const s of statuses) {
      summary.handshakeTimeouts += s.counts.handshakeTimeouts
      summary.dialFailures += s.counts.dialFailures
      summary.skipped += s.counts.skipped
    }
    summary.fds = children.map((c) => fdsOf(c.proc.pid))
    summary.rssMB = statuses.map((s) => Math.round(s.rss / 2 ** 20))
    summary.rssPerPeerMB = Math.round((statuses.reduce((n, s) => n + s.rss, 0) / 2 ** 20 / count) * 100) / 100
  } catch {
    // A child is gone: report what was measured.
  }
  await Promise.all(children.map((c) => stopChild(c.proc)))
  summary.elapsedSeconds = Number(seconds(began))
  return summary
}

function spawnChild(k: number, count: number, processes: number): Child {
  // Bots k, k + K, k + 2K…: every process holds early and late bots alike.
  const indices: number[] = []
  for (let i = k; i < count; i += processes) indices.push(i)
  const proc = fork(WORKER, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'advanced' })
  const child: Child = { proc, indices, waiting: new Map() }
  proc.on('message', (msg: ChildMessage) => {
    if (msg.type === 'failed') child.failed = String(msg.message)
    const list = child.waiting.get(msg.type)
    const resolve = list?.shift()
    resolve?.(msg)
  })
  proc.on('exit', () => {
    child.failed ??= 'the process exited'
    for (const list of child.waiting.values()) for (const r of list.splice(0)) r({ type: 'exit' })
  })
  return child
}

/** The next message of `type` from the child; rejects after `timeout` ms or when it exits. */
function next(child: Child, type: string, timeout: number): Promise<ChildMessage> {
  return new Promise((resolve, reject) => {
    if (child.proc.exitCode !== null) return reject(new BotError('ABORTED', `a swarm process exited`))
    const timer = setTimeout(
      () => {
        const list = child.waiting.get(type) ?? []
        const i = list.indexOf(done)
        if (i >= 0) list.splice(i, 1)
        reject(new BotError('ABORTED', `a swarm process did not answer "${type}" in time`))
      },
      Math.max(1, timeout),
    )
    const done = (msg: ChildMessage) => {
      clearTimeout(timer)
      if (msg.type === 'exit') reject(new BotError('ABORTED', child.failed ?? 'a swarm process exited'))
      else resolve(msg)
    }
    const list = child.waiting.get(type) ?? []
    list.push(done)
    child.waiting.set(type, list)
  })
}

async function poll(children: Child[], timeout: number): Promise<ChildStatus[]> {
  return Promise.all(
    children.map(async (c) => {
      const reply = next(c, 'status', Math.max(1_000, timeout))
      c.proc.send({ type: 'status' })
      return (await reply) as unknown as ChildStatus
    }),
  )
}

/**
 * Every bot has a mesh neighbour, and the sessions gossip flows over (mesh neighbours and the
 * connections the bots made) connect all of them.
 */
function formed(statuses: ChildStatus[], count: number): boolean {
  const bots = statuses.flatMap((s) => s.bots)
  return (
    bots.length === count && bots.every((b) => b.active.length > 0) && components(statuses, 'linked') === 1
  )
}

/** Connected parts of the graph of mesh neighbours (`active`) or of all sessions (`linked`), either direction. */
function components(statuses: ChildStatus[], by: 'active' | 'linked'): number {
  const bots = statuses.flatMap((s) => s.bots)
  const adjacent = new Map<string, string[]>()
  const add = (a: string, b: string) => {
    const list = adjacent.get(a)
    if (list) list.push(b)
    else adjacent.set(a, [b])
  }
  for (const b of bots) {
    for (const n of b[by]) {
      add(b.id, n)
      add(n, b.id)
    }
  }
  const seen = new Set<string>()
  let parts = 0
  for (const b of bots) {
    if (seen.has(b.id)) continue
    parts++
    seen.add(b.id)
    const queue = [b.id]
    while (queue.length > 0) {
      for (const n of adjacent.get(queue.pop()!) ?? []) {
        if (!seen.has(n)) {
          seen.add(n)
          queue.push(n)
        }
      }
    }
  }
  return parts
}

function isolated(statuses: ChildStatus[]): number {
  return statuses.reduce((n, s) => n + s.bots.filter((b) => b.active.length === 0).length, 0)
}

function fdsOf(pid: number | undefined): number {
  try {
    return pid === undefined ? 0 : readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return 0
  }
}

/** Asks a worker to exit and waits until it has, killing it after 10 s. @internal Exported for tests. */
export async function stopChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  // A worker may be exiting on its own: its channel closing under this send is no error, and without a
  // callback the EPIPE would be an 'error' event that nothing here listens to.
  if (proc.connected) proc.send({ type: 'stop' }, () => {})
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

function seconds(since: number): string {
  return ((Date.now() - since) / 1000).toFixed(1)
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))
}

/** The summary as plain text lines, for people. */
export function formatProcessSummary(s: ProcessSwarmSummary): string {
  const reach = s.reach.map((r) => `${(r * 100).toFixed(1)} %`).join(', ')
  return `${[
    `swarm: ${s.bots} bots in ${s.processes} processes over TCP (mesh)`,
    `formed in: ${s.formationSeconds === undefined ? 'not formed' : `${s.formationSeconds} s`}`,
    `links: ${s.links}, max degree ${s.maxDegree}, max neighbours ${s.maxActive}`,
    `handshake timeouts: ${s.handshakeTimeouts}, failed dials: ${s.dialFailures}, not dialed (mesh chose): ${s.skipped}`,
    `broadcast reach: ${reach || 'none'}`,
    `file descriptors per process: ${s.fds.join(', ')}`,
    `RSS per process: ${s.rssMB.join(', ')} MB (${s.rssPerPeerMB} MB per bot)`,
    `elapsed: ${s.elapsedSeconds} s${s.completed ? '' : ` (stopped in phase ${s.phase})`}`,
  ].join('\n')}\n`
}
