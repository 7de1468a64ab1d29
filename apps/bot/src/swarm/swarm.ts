import { setMaxListeners } from 'node:events'
import { createPeer, type Peer, type PeerInit, type Transport } from '@parley/core'
import {
  type BehaviourHandle,
  type BehaviourName,
  type BehaviourOptions,
  isReactive,
  startBehaviour,
} from '../behaviours/index.js'
import { ignore } from '../behaviours/types.js'
import { type Bot, createBot, Traffic } from '../bot.js'
import { BotError, describeError } from '../errors.js'
import { runScript, type ScriptResult } from '../scripts/runner.js'
import type { Script } from '../scripts/types.js'
import { render, type Vars } from '../template.js'
import { waitForEvent } from '../wait.js'
import { type Edge, edges as edgesOf, seededRandom, type Topology } from './topology.js'

/** Most bots one swarm may run in one process (more: `runProcessSwarm`). */
export const MAX_SWARM_SIZE = 10_000
/** Most bots wired as a full mesh: 200 is already ~20,000 connections. */
export const MAX_FULL_MESH = 200
/** Dials in flight at once while wiring. */
const WIRING_CONCURRENCY = 8
/** Longest wait for one link (both ends see each other), in ms. */
const LINK_TIMEOUT = 10_000

/** Options of {@link startSwarm} and {@link runSwarm}. */
export interface SwarmInit {
  /** Bots to start, 1–10,000 (a full `mesh` topology: at most 200). */
  count: number
  topology: Topology
  /** One transport for every bot, or one per bot (in memory, a host per bot). */
  transport: Transport | ((index: number) => Transport)
  /** Listen address of bot `index`. @default '127.0.0.1:0' (TCP, any free port) */
  listen?: (index: number) => string
  /** Name template; `{{index}}` counts from 0. @default 'bot-{{index}}' */
  name?: string
  /** Behaviour every bot runs. Give this or `script` (or neither, for a swarm that only connects). */
  behaviour?: BehaviourName
  behaviourOptions?: BehaviourOptions
  /**
   * A first message each bot broadcasts once wired, so reactive behaviours have something to react to.
   * `{{name}}` and `{{index}}` are filled in. @default 'hello from {{name}}' for echo and relay, none otherwise
   */
  hello?: string | false
  /** Script every bot runs, with `{{index}}`, `{{name}}`, `{{count}}` and `vars` filled in per bot. */
  script?: Script
  vars?: Vars
  /** Upper bound of the run, in ms; the swarm ends earlier once its work is done and nothing is in flight. @default 10_000 */
  duration?: number
  /** Seed of the random topology. @default Math.random */
  seed?: number
  /** Other construction options of every peer. */
  peerInit?: Omit<PeerInit, 'transport' | 'name' | 'listen'>
  /** Per-bot lines, prefixed `[bot-3] `. @default discard */
  log?: (line: string) => void
  /** Aborting ends the run (`endedBy: 'signal'`). */
  signal?: AbortSignal
}

/** Why a swarm run ended. */
export type SwarmEnd = 'settled' | 'duration' | 'signal'

/** Counters of one bot in a {@link SwarmSummary}. */
export interface BotSummary {
  name: string
  sent: number
  delivered: number
  failed: number
  received: number
  peersSeen: number
}

/** What a swarm did. */
export interface SwarmSummary {
  bots: number
  topology: Topology
  transport: string
  /** `behaviour echo`, `script hello.yaml`, or `idle`. */
  workload: string
  /** Links made while wiring. */
  links: number
  messages: { sent: number; delivered: number; failed: number; received: number }
  /** Distinct peers each bot saw connected during the run. */
  peersSeen: { min: number; max: number; mean: number }
  scripts?: { passed: number; failed: number; aborted: number; errors: string[] }
  endedBy: SwarmEnd
  elapsedMs: number
  perBot: BotSummary[]
}

/** A running swarm. */
export interface Swarm {
  readonly bots: readonly Bot[]
  readonly edges: readonly Edge[]
  /** Resolves when the work is done and nothing is in flight, `duration` passed, or the signal aborted. Never rejects. */
  readonly done: Promise<SwarmEnd>
  /** Stops the work and every peer (gracefully, in parallel) and returns the summary. Idempotent. */
  stop(): Promise<SwarmSummary>
}

/**
 * Starts `count` peers, wires them in `topology`, and starts the behaviour or script on each.
 * Reactive behaviours are attached before wiring (a greeter must see its neighbours join); chatter and
 * scripts start once every link is up.
 *
 * @throws BotError `USAGE` for a bad count or options; the first start or wiring error, after stopping
 *   every peer that did start.
 */
export async function startSwarm(init: SwarmInit): Promise<Swarm> {
  const began = performance.now()
  const { count, topology } = init
  if (!Number.isInteger(count) || count < 1 || count > MAX_SWARM_SIZE) {
    throw new BotError('USAGE', `the swarm size must be a whole number from 1 to ${MAX_SWARM_SIZE}`)
  }
  if (topology === 'mesh' && count > MAX_FULL_MESH) {
    throw new BotError(
      'USAGE',
      `a full mesh is limited to ${MAX_FULL_MESH} bots; use a random topology or --processes`,
    )
  }
  if (init.behaviour && init.script)
    throw new BotError('USAGE', 'give a swarm a behaviour or a script, not both')
  const duration = init.duration ?? 10_000
  if (!Number.isInteger(duration) || duration < 1) {
    throw new BotError('USAGE', 'the swarm duration must be a whole number of milliseconds, at least 1')
  }
  const log = init.log ?? (() => {})
  const nameTemplate = init.name ?? 'bot-{{index}}'
  const names = Array.from({ length: count }, (_, index) => {
    try {
      return render(nameTemplate, { index: String(index), count: String(count) })
    } catch (err) {
      throw new BotError(
        'USAGE',
        `the bot name uses {{${(err as Error).message}}}; only {{index}} and {{count}} exist`,
      )
    }
  })
  if (new Set(names).size !== count)
    throw new BotError('USAGE', 'the bot name template must include {{index}}')
  const hello =
    init.hello ?? (init.behaviour === 'echo' || init.behaviour === 'relay' ? 'hello from {{name}}' : false)

  const traffic = new Traffic()
  const transportOf =
    typeof init.transport === 'function' ? init.transport : () => init.transport as Transport
  const transports = names.map((_, i) => transportOf(i))
  const peers: Peer[] = names.map((name, i) =>
    createPeer({
      ...init.peerInit,
      transport: transports[i]!,
      name,
      listen: init.listen?.(i) ?? '127.0.0.1:0',
    }),
  )
  const bots = peers.map((peer) => createBot(peer, { traffic }))
  const handles: BehaviourHandle[] = []
  const abortWork = new AbortController()
  // One signal for all the work, followed by every script and wiring worker: lift the listener warning.
  setMaxListeners(4 * count + 32, abortWork.signal)
  const onOuterAbort = () => abortWork.abort(init.signal?.reason)
  const stopPeers = () => Promise.all(peers.map((p) => p.stop()))
  const links = edgesOf(topology, count, init.seed === undefined ? Math.random : seededRandom(init.seed))

  try {
    if (init.signal?.aborted) throw new BotError('ABORTED', 'the swarm was stopped before it started')
    init.signal?.addEventListener('abort', onOuterAbort, { once: true })
    await Promise.all(peers.map((p) => p.start({ signal: abortWork.signal })))
    if (init.behaviour && isReactive(init.behaviour)) {
      for (const bot of bots) handles.push(startBehaviour(init.behaviour, bot, init.behaviourOptions))
    }
    await wire(bots, links, abortWork.signal)
    if (init.behaviour && !isReactive(init.behaviour)) {
      for (const bot of bots) handles.push(startBehaviour(init.behaviour, bot, init.behaviourOptions))
    }
  } catch (err) {
    init.signal?.removeEventListener('abort', onOuterAbort)
    for (const h of handles) h.stop()
    await stopPeers()
    throw err
  }

  // The work: hello broadcasts, behaviours' own sends, or scripts.
  const work: Promise<unknown>[] = handles.map((h) => h.done)
  if (hello !== false) {
    bots.forEach((bot, index) => {
      const text = render(hello, { name: bot.peer.name, index: String(index), count: String(count) })
      work.push(bot.broadcast(text))
    })
  }
  const results: Array<ScriptResult | undefined> = new Array(count).fill(undefined)
  if (init.script) {
    const script = init.script
    bots.forEach((bot, index) => {
      const name = bot.peer.name
      const run = runScript(script, {
        bot,
        vars: { ...init.vars, index: String(index), name, count: String(count) },
        log: (line) => log(`[${name}] ${line}`),
        signal: abortWork.signal,
        stopAtEnd: false,
      }).then(
        (r) => {
          results[index] = r
          if (!r.ok && r.error) log(`[${name}] ${r.error}`)
        },
        (err: unknown) => {
          // Only a variable error gets here: report it as this bot's failure.
          results[index] = failedResult(bot, describeError(err))
          log(`[${name}] ${describeError(err)}`)
        },
      )
      work.push(run)
    })
  }

  let ended: SwarmEnd | undefined
  let finish: (how: SwarmEnd) => void = () => {}
  const done = new Promise<SwarmEnd>((resolve) => {
    // Not unref()'d: over the memory transport this timer may be all that keeps the process alive.
    const timer = setTimeout(() => finish('duration'), duration)
    const onAbort = () => finish('signal')
    finish = (how) => {
      if (ended) return
      ended = how
      clearTimeout(timer)
      init.signal?.removeEventListener('abort', onAbort)
      resolve(how)
    }
    if (init.signal?.aborted) return finish('signal')
    init.signal?.addEventListener('abort', onAbort, { once: true })
    Promise.all(work)
      .then(() => traffic.idle(abortWork.signal))
      .then(() => finish('settled'), ignore)
  })

  let stopping: Promise<SwarmSummary> | undefined
  const stop = () => {
    stopping ??= (async () => {
      // Stopped before it ended on its own: the caller is the "signal".
      finish('signal')
      init.signal?.removeEventListener('abort', onOuterAbort)
      const endedBy = ended ?? 'signal'
      for (const h of handles) h.stop()
      abortWork.abort(new BotError('ABORTED', 'the swarm stopped'))
      await Promise.allSettled(work)
      await stopPeers()
      for (const bot of bots) bot.detach()
      return summarize(
        init,
        transports[0]!.name,
        bots,
        links.length,
        init.script ? results : undefined,
        endedBy,
        performance.now() - began,
      )
    })()
    return stopping
  }
  return { bots, edges: links, done, stop }
}

/**
 * Starts a swarm, waits until it is done (work finished and quiet, `duration`, or the signal), stops it,
 * and returns the summary.
 */
export async function runSwarm(init: SwarmInit): Promise<SwarmSummary> {
  const swarm = await startSwarm(init)
  await swarm.done
  return swarm.stop()
}

/** Connects every edge, a few at a time, waiting until both ends see each other. */
async function wire(bots: readonly Bot[], links: readonly Edge[], signal?: AbortSignal): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < links.length) {
      const [from, to] = links[next++]!
      const a = bots[from]!.peer
      const b = bots[to]!.peer
      const address = b.addresses[0]
      if (address === undefined)
        throw new BotError('USAGE', `${b.name} is not listening, so it cannot be dialed`)
      const seen = waitForEvent(b, 'peer:connect', (info) => (info.id === a.id ? true : undefined), {
        check: () => (b.peers().connected.some((p) => p.id === a.id) ? true : undefined),
        timeout: LINK_TIMEOUT,
        signal,
        timeoutMessage: () => `${b.name} did not see ${a.name} connect within ${LINK_TIMEOUT} ms`,
      })
      try {
        await a.connect(address, { signal })
        await seen
      } catch (err) {
        seen.catch(ignore)
        throw new BotError('ABORTED', `could not connect ${a.name} to ${b.name}: ${describeError(err)}`, {
          cause: err,
        })
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(WIRING_CONCURRENCY, links.length) }, worker))
}

function failedResult(bot: Bot, error: string): ScriptResult {
  return { status: 'failed', ok: false, error, stepsRun: 0, stats: bot.stats, elapsedMs: 0 }
}

function summarize(
  init: SwarmInit,
  transport: string,
  bots: readonly Bot[],
  links: number,
  results: ReadonlyArray<ScriptResult | undefined> | undefined,
  endedBy: SwarmEnd,
  elapsed: number,
): SwarmSummary {
  const perBot = bots.map((b) => ({
    name: b.peer.name,
    sent: b.stats.sent,
    delivered: b.stats.delivered,
    failed: b.stats.failed,
    received: b.stats.received,
    peersSeen: b.stats.peersSeen.size,
  }))
  const sum = (k: 'sent' | 'delivered' | 'failed' | 'received') => perBot.reduce((n, b) => n + b[k], 0)
  const seen = perBot.map((b) => b.peersSeen)
  const summary: SwarmSummary = {
    bots: bots.length,
    topology: init.topology,
    transport,
    workload: init.behaviour
      ? `behaviour ${init.behaviour}`
      : init.script
        ? `script ${init.script.source}`
        : 'idle',
    links,
    messages: {
      sent: sum('sent'),
      delivered: sum('delivered'),
      failed: sum('failed'),
      received: sum('received'),
    },
    peersSeen: {
      min: Math.min(...seen),
      max: Math.max(...seen),
      mean: Math.round((seen.reduce((a, b) => a + b, 0) / seen.length) * 100) / 100,
    },
    endedBy,
    elapsedMs: Math.round(elapsed),
    perBot,
  }
  if (results) {
    const errors: string[] = []
    let passed = 0
    let failed = 0
    let aborted = 0
    results.forEach((r, i) => {
      if (r?.status === 'passed') passed++
      else if (r?.status === 'failed') {
        failed++
        errors.push(`${perBot[i]!.name}: ${r.error}`)
      } else {
        aborted++
        errors.push(`${perBot[i]!.name}: the script did not finish (the swarm ended: ${endedBy})`)
      }
    })
    summary.scripts = { passed, failed, aborted, errors: errors.slice(0, 10) }
  }
  return summary
}

/** The summary as plain text lines, for people. */
export function formatSummary(s: SwarmSummary): string {
  const m = s.messages
  const lines = [
    `swarm: ${s.bots} bots, ${s.topology} (${s.links} links) over ${s.transport}, ${s.workload}`,
    `messages: ${m.sent} sent, ${m.delivered} delivered, ${m.failed} failed, ${m.received} received`,
    `peers seen per bot: min ${s.peersSeen.min}, max ${s.peersSeen.max}, mean ${s.peersSeen.mean}`,
  ]
  if (s.scripts) {
    lines.push(
      `scripts: ${s.scripts.passed} passed, ${s.scripts.failed} failed, ${s.scripts.aborted} unfinished`,
    )
    for (const e of s.scripts.errors) lines.push(`  ${e}`)
  }
  const how =
    s.endedBy === 'settled'
      ? 'work done'
      : s.endedBy === 'duration'
        ? 'duration reached'
        : 'stopped by signal'
  lines.push(`elapsed: ${s.elapsedMs} ms (${how})`)
  return `${lines.join('\n')}\n`
}
