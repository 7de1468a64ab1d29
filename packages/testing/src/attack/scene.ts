import { setTimeout as delay } from 'node:timers/promises'
import { createPeer, type Peer, tcpTransport } from '@parley/core'
import { startVictim, type Victim, type VictimInit } from './victim.js'
import type { WireVersion } from './wire.js'

const MB = 1024 * 1024
/** A refused newcomer tries again after this long, as a user (or core's reconnection) would. */
const RETRY_MS = 250

/** Options of {@link attackScene}. */
export interface AttackSceneInit extends VictimInit {
  /** The wire version the attackers speak. @default 3 */
  wire?: WireVersion
  /** How much the victim's RSS may grow over where it started. @default 100 MiB */
  rssBudget?: number
  /**
   * How long an honest message may take to be acknowledged: a check that the victim still serves its
   * peers (an attack that blocks its event loop or takes its slots fails it), not a latency measurement,
   * so it leaves room for a loaded machine. The latencies are reported with PARLEY_ATTACK_MEASURE=1.
   * @default 5_000 ms
   */
  ackBudget?: number
}

/** What {@link AttackScene.during} saw. */
export interface AttackReport {
  /** Honest messages acknowledged while the attack ran. */
  probes: number
  /** The slowest of them, in ms. */
  maxAckMs: number
  /** The victim's largest RSS growth seen, in bytes. */
  maxGrowth: number
  /** How long the attack ran, in ms. */
  attackMs: number
}

/** Options of {@link AttackScene.during}. */
export interface DuringOptions {
  /** Pause between probes (bounded polling of the victim). @default 100 ms */
  every?: number
  /** At most this many probes; the attack is aborted after them. @default 300 */
  maxProbes?: number
}

/** A victim process, an honest peer connected to it, and what a user would notice. */
export interface AttackScene {
  readonly victim: Victim
  /** An honest peer in this process, connected to the victim before the attack. */
  readonly honest: Peer
  readonly wire: WireVersion
  /** The victim's RSS when it started, in bytes. */
  readonly baseline: number
  /**
   * The honest peer sends one message; resolves with the ms until the victim acknowledged it.
   * @throws Error when it takes longer than the ack budget (1 s)
   */
  probeMessage(label: string): Promise<number>
  /**
   * A new honest peer connects to the victim and gets one message acknowledged; it is stopped again.
   * Like a user, it tries again (a quarter second later) when refused, for up to `timeout` ms in all.
   * @throws Error when it cannot connect within `timeout` (default 5 s) or its message is not acknowledged in 1 s
   */
  probeNewPeer(timeout?: number): Promise<void>
  /** The victim's RSS growth over the baseline now (bytes). */
  growth(): number
  /** @throws Error when the victim's RSS grew past the budget */
  checkMemory(when: string): number
  /**
   * Runs `attack` while probing, every `every` ms, that the victim's memory stays within budget and that
   * the honest peer's message is acknowledged within budget. The first failed probe aborts the attack's
   * signal and throws. Resolves once the attack finished and every probe passed.
   */
  during(attack: (signal: AbortSignal) => Promise<void>, options?: DuringOptions): Promise<AttackReport>
  /** Stops the honest peers and kills the victim. Idempotent; safe after a failure. */
  close(): Promise<void>
}

/** Starts a victim and connects an honest peer to it. Call `close()` in cleanup. */
export async function attackScene(init: AttackSceneInit = {}): Promise<AttackScene> {
  const victim = await startVictim(init)
  const peers = new Set<Peer>()
  // PARLEY_ATTACK_MEASURE=1: lift the budgets and log what the attack did (how the numbers in a report
  // are taken); the safety net still kills a victim past 1 GiB.
  const measure = process.env.PARLEY_ATTACK_MEASURE === '1'
  const rssBudget = measure ? Number.POSITIVE_INFINITY : (init.rssBudget ?? 100 * MB)
  const ackBudget = measure ? 30_000 : (init.ackBudget ?? 5_000)
  const baseline = victim.initial.rss
  const close = async () => {
    victim.kill()
    await Promise.allSettled([...peers].map((p) => p.stop()))
    peers.clear()
  }
  const honestPeer = async (name: string, timeout: number): Promise<Peer> => {
    const peer = createPeer({ transport: tcpTransport(), name, reconnect: false })
    peers.add(peer)
    try {
      await peer.start()
      await peer.connect(victim.address, { signal: AbortSignal.timeout(timeout) })
    } catch (err) {
      peers.delete(peer)
      await peer.stop().catch(() => {})
      throw err
    }
    return peer
  }
  let honest: Peer
  try {
    honest = await honestPeer('honest', 5_000)
  } catch (err) {
    await close()
    throw err
  }

  const alive = () => {
    if (victim.killedForMemory) {
      throw new Error(
        `the victim was killed for its memory: RSS ${Math.round(victim.peakRss() / MB)} MB, started at ${Math.round(baseline / MB)} MB`,
      )
    }
    if (victim.exited()) throw new Error('the victim process exited during the attack')
  }
  /** The victim's state in a few words, for failure messages. */
  const vitals = async (): Promise<string> => {
    const rss = `RSS ${Math.round(victim.rss() / MB)} MB (started at ${Math.round(baseline / MB)} MB)`
    try {
      const s = await victim.stats({ timeout: 1_000 })
      return `${rss}, event-loop lag up to ${Math.round(s.lagMaxMs)} ms, ${s.connected} peers connected`
    } catch (err) {
      return `${rss}, ${(err as Error).message}`
    }
  }
  const sendProbe = async (peer: Peer, label: string): Promise<number> => {
    const started = performance.now()
    try {
      await peer.send(victim.id, `${label} (honest)`, { timeout: ackBudget })
    } catch (err) {
      alive()
      throw new Error(
        `${label}: an honest message was not acknowledged within ${ackBudget} ms (${(err as Error).message}; victim: ${await vitals()})`,
        { cause: err },
      )
    }
    return performance.now() - started
  }
  const scene: AttackScene = {
    victim,
    honest,
    wire: init.wire ?? 3,
    baseline,
    probeMessage: (label) => sendProbe(honest, label),
    async probeNewPeer(timeout = 5_000) {
      const deadline = performance.now() + timeout
      let peer: Peer | undefined
      const failures: string[] = []
      // Bounded: at most one attempt per RETRY_MS of the time allowed, plus the first.
      for (let attempt = 0; peer === undefined && attempt <= timeout / RETRY_MS; attempt++) {
        const left = deadline - performance.now()
        if (left <= 0) break
        try {
          peer = await honestPeer('newcomer', Math.ceil(left))
        } catch (err) {
          alive()
          failures.push((err as Error).message)
          if (deadline - performance.now() > RETRY_MS) await delay(RETRY_MS)
        }
      }
      if (peer === undefined) {
        throw new Error(
          `a new honest peer could not connect within ${timeout} ms (${failures.length} attempts; last: ${failures.at(-1)}) (victim: ${await vitals()})`,
        )
      }
      try {
        await sendProbe(peer, 'newcomer')
      } finally {
        peers.delete(peer)
        await peer.stop()
      }
    },
    growth: () => victim.rss() - baseline,
    checkMemory(when) {
      alive()
      const growth = scene.growth()
      if (growth > rssBudget) {
        throw new Error(
          `${when}: the victim's RSS grew by ${Math.round(growth / MB)} MB (budget ${Math.round(rssBudget / MB)} MB; started at ${Math.round(baseline / MB)} MB)`,
        )
      }
      return growth
    },
    async during(attack, options = {}) {
      const every = options.every ?? 100
      const maxProbes = options.maxProbes ?? 300
      const controller = new AbortController()
      const started = performance.now()
      let done = false
      const running = attack(controller.signal).finally(() => {
        done = true
      })
      // Observed by the loop below; attached now so a failure while probing is not unhandled.
      running.catch(() => {})
      const report: AttackReport = { probes: 0, maxAckMs: 0, maxGrowth: 0, attackMs: 0 }
      try {
        for (let i = 0; i < maxProbes && !done; i++) {
          report.maxGrowth = Math.max(report.maxGrowth, scene.checkMemory(`probe ${i}`))
          report.maxAckMs = Math.max(report.maxAckMs, await scene.probeMessage(`probe ${i}`))
          report.probes++
          report.maxGrowth = Math.max(report.maxGrowth, scene.checkMemory(`probe ${i}`))
          await Promise.race([delay(every), running.catch(() => {})])
        }
        controller.abort(new Error('the attack ran out of probes'))
        await running
      } catch (err) {
        controller.abort(err)
        await running.catch(() => {})
        throw err
      }
      report.attackMs = performance.now() - started
      report.maxGrowth = Math.max(report.maxGrowth, scene.checkMemory('after the attack'))
      if (measure) console.info(`attack report: ${JSON.stringify(report)}; victim: ${await vitals()}`)
      return report
    },
    close,
  }
  return scene
}
