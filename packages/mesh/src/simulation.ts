import { createPrivateKey, createPublicKey } from 'node:crypto'
import type { Identity } from '@parley/core'
import {
  createPeer,
  type MemoryNetwork,
  memoryNetwork,
  memoryTransport,
  type Peer,
  plaintextUpgrader,
} from '@parley/core'
import { createGossip, type Gossip, type GossipDelivery } from './gossip.js'
import { createMesh, type Mesh } from './membership.js'
import { pick, type Random, seededRandom } from './random.js'

/** Options of {@link simulateMesh}. */
export interface SimulationOptions {
  peers: number
  /** Fraction of peers killed (without GOODBYE) after formation, and as many new ones joined. @default 0 */
  churn?: number
  /** Broadcasts from random live peers, one after the other. @default 5 */
  broadcasts?: number
  /** Seeds every choice: identities, contacts, victims, origins and each mesh's random source. @default 1 */
  seed?: number
  /** Neighbours per peer. @default 6 */
  activeSize?: number
  /** Secure channel: Noise, or plaintext to spare the handshakes' CPU. @default noise up to 1,000 peers */
  upgrader?: 'noise' | 'plaintext'
  /** Wall-clock budget of the whole run; phases that do not finish in it are cut short. @default 600_000 ms */
  timeLimit?: number
  /** Joins in flight at once while the overlay forms. @default 16, 64 above 2,000 peers */
  joinConcurrency?: number
  /** One line of progress (for stderr). */
  onProgress?: (line: string) => void
}

/** What {@link simulateMesh} measured: overlay formation and repair, broadcast reach and duplicates. */
export interface SimulationResult {
  peers: number
  /** Live peers at the end (after churn). */
  live: number
  seed: number
  churn: number
  /** From the first join until every peer has neighbours and the overlay is connected. */
  formationSeconds: number
  /** Seconds the overlay took to be whole again after churn (0 without churn). */
  repairSeconds: number
  /** Per broadcast: fraction of the other live peers that delivered it. */
  reach: { min: number; mean: number }
  /** GOSSIP frames received per message delivered, over all broadcasts (1: no duplicates at all). */
  duplicateFactor: number
  /**
   * The same per broadcast, in order: the first one after formation floods and prunes the tree,
   * later ones follow it (Plumtree), so they show the steady state.
   */
  duplicateFactors: number[]
  /** With churn: the broadcast before it that built the tree (its flood is not in the figures above). */
  warmup?: { reach: number; duplicateFactor: number }
  /** IHAVE keys, GRAFTs and PRUNEs sent during the broadcasts. */
  control: { announced: number; grafts: number; prunes: number }
  /** Sessions ended during the run, by `peer:disconnect` reason and message (but for GOODBYEs). */
  disconnects: Record<string, number>
  hops: { p50: number; p99: number }
  latencyMs: { p50: number; p99: number }
  /** Most sessions any peer held at any check, mesh or not. */
  maxDegree: number
  /** Most neighbours (active view) any peer held at any check. */
  maxActive: number
  rssMB: number
  upgrader: 'noise' | 'plaintext'
  /** Longest event-loop lag seen (ms): every peer shares this one loop. */
  maxLagMs: number
  /** False when the time limit cut a phase short (then `phase` says which). */
  completed: boolean
  phase: string
  seconds: number
}

/** Joins pause while the event loop lags more than this. */
const LAG_PAUSE_MS = 1_500

interface Node {
  readonly index: number
  readonly peer: Peer
  readonly mesh: Mesh
  readonly gossip: Gossip
  alive: boolean
}

interface Tally {
  delivered: number
  hops: number[]
  latency: number[]
}

/**
 * Runs N peers with membership and gossip in this process on the in-memory transport: forms the
 * overlay by joins through random earlier peers, kills and adds peers (churn), broadcasts, and
 * measures. Choices are seeded; timing (and so the exact overlay) still depends on the event loop.
 */
export async function simulateMesh(options: SimulationOptions): Promise<SimulationResult> {
  const started = Date.now()
  const n = options.peers
  if (!Number.isInteger(n) || n < 2) throw new RangeError('peers must be an integer of at least 2')
  const churn = options.churn ?? 0
  if (!(churn >= 0 && churn < 1)) throw new RangeError('churn must be in [0, 1)')
  const seed = options.seed ?? 1
  const broadcasts = options.broadcasts ?? 5
  const activeSize = options.activeSize ?? 6
  const upgrader = options.upgrader ?? (n <= 1000 ? 'noise' : 'plaintext')
  const deadline = started + (options.timeLimit ?? 600_000)
  const concurrency = options.joinConcurrency ?? (n > 2000 ? 64 : 16)
  const progress = options.onProgress ?? (() => {})
  const random = seededRandom(seed)
  const network = memoryNetwork()
  const nodes: Node[] = []
  const tallies = new Map<string, Tally>()
  const disconnects: Record<string, number> = {}
  let maxDegree = 0
  let maxActive = 0
  let completed = true
  let phase = 'done'
  const overTime = () => Date.now() > deadline
  // Event-loop lag, sampled every 100 ms: joins wait while it is high, so that the session layer's
  // and the mesh's timeouts (wall-clock) do not fire only because one process serves every peer.
  let lag = 0
  let tickAt = Date.now()
  let maxLag = 0
  const lagTimer = setInterval(() => {
    const now = Date.now()
    lag = Math.max(0, now - tickAt - 100)
    maxLag = Math.max(maxLag, lag)
    tickAt = now
  }, 100)
  lagTimer.unref()

  const makeNode = async (): Promise<Node> => {
    const index = nodes.length
    const node = startNode(network, index, random, seed, activeSize, upgrader, tallies, n > 2000)
    node.peer.on('peer:disconnect', (e) => {
      const key = e.reason === 'goodbye' ? e.reason : `${e.reason}: ${e.message}`
      disconnects[key] = (disconnects[key] ?? 0) + 1
    })
    nodes.push(node)
    await node.peer.start()
    return node
  }

  /** Peers that joined (or started the overlay): contacts are drawn from these. */
  const joined: Node[] = []
  const joinAll = async (fresh: Node[]): Promise<void> => {
    let next = 0
    let done = 0
    let failed = 0
    let inFlight = 0
    const worker = async () => {
      while (next < fresh.length && !overTime()) {
        // No more joins in flight than peers to join through: a lone first peer is not stormed.
        if (inFlight >= joined.length || lag > LAG_PAUSE_MS) {
          await sleep(inFlight >= joined.length ? 10 : 250)
          continue
        }
        const node = fresh[next++]!
        inFlight++
        let ok = false
        for (let attempt = 0; attempt < 3 && !ok; attempt++) {
          let contact = joined[pick(random, joined.length)]!
          for (let tries = 0; !contact.alive && tries < 8; tries++)
            contact = joined[pick(random, joined.length)]!
          try {
            await node.mesh.join(contact.peer.addresses[0]!)
            ok = true
          } catch {
            // Another contact next time; after three, the node's own repair timer rejoins later.
          }
        }
        inFlight--
        if (ok) joined.push(node)
        else failed++
        if (++done % 500 === 0) {
          const m = meshTotals(nodes)
          progress(
            `joined ${done}/${fresh.length} (${failed} failed), dials ${m.dials} (${m.dialFailures} failed), ` +
              `timeouts ${m.timeouts}, lag ${lag} ms, ${Math.round((Date.now() - started) / 1000)} s, ` +
              `ended ${JSON.stringify(disconnects)}`,
          )
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, fresh.length) }, worker))
  }

  /** Polls until every live peer has a neighbour and gossip from any peer can reach every other one. */
  const settle = async (label: string): Promise<boolean> => {
    let checks = 0
    while (!overTime()) {
      const state = inspect(nodes)
      maxDegree = Math.max(maxDegree, state.maxDegree)
      maxActive = Math.max(maxActive, state.maxActive)
      if (checks++ % 8 === 0) {
        const m = meshTotals(nodes)
        progress(
          `${label}: ${state.live} live, ${state.isolated} without neighbours, ${state.unreached} unreachable, ` +
            `degree ≤ ${state.maxDegree}, ${state.sessions} sessions, dials ${m.dials} (${m.dialFailures} failed), ` +
            `dead ${m.deadNeighbors}, timeouts ${m.timeouts}, ${Math.round((Date.now() - started) / 1000)} s, ` +
            `ended ${JSON.stringify(disconnects)}`,
        )
        // A few peers left alone: say what they hold, to tell a dead view from a peer out of contacts.
        if (state.isolated > 0 && state.isolated <= 3) {
          const live = new Set(nodes.filter((y) => y.alive).map((y) => y.peer.id))
          for (const x of nodes.filter((y) => y.alive && !y.mesh.active().some((id) => live.has(id)))) {
            const st = x.mesh.stats
            progress(
              `  alone: p${x.index}, active ${x.mesh.active().length} (dead), passive ${x.mesh.passive().length}, ` +
                `sessions ${x.peer.resources().sessions}, dials ${st.dials} (${st.dialFailures} failed), ` +
                `timeouts ${st.timeouts}, refreshes ${st.refreshes}`,
            )
          }
        }
      }
      if (state.isolated === 0 && state.unreached === 0) return true
      // The check walks every peer: at 10,000 peers it is not free, so it runs less often.
      await sleep(Math.max(250, n / 10))
    }
    return false
  }

  try {
    // 1. Formation: start every peer, the first alone, then join in waves through earlier peers.
    progress(`starting ${n} peers (${upgrader} upgrader, ${activeSize} neighbours each, seed ${seed})`)
    for (let i = 0; i < n; i++) {
      await makeNode()
      if ((i + 1) % 1000 === 0) progress(`started ${i + 1}/${n}`)
    }
    const formStart = Date.now()
    joined.push(nodes[0]!)
    await joinAll(nodes.slice(1))
    const formed = await settle('forming')
    const formationSeconds = (Date.now() - formStart) / 1000
    if (!formed) {
      completed = false
      phase = 'formation'
    }
    progress(`formed in ${formationSeconds.toFixed(1)} s`)

    // 2. Churn: kill a fraction without GOODBYE, join as many new peers through random live ones.
    // One broadcast first builds the gossip tree (Plumtree prunes it from a flood), so that the
    // measured broadcasts after churn go over a tree with dead links and exercise its repair.
    let repairSeconds = 0
    let warmup: SimulationResult['warmup']
    if (completed && churn > 0) {
      const alive = nodes.filter((x) => x.alive)
      const origin = alive[pick(random, alive.length)]!
      const start = totals(nodes)
      const { id } = origin.gossip.broadcast(`tree from ${origin.index}`)
      const tally = { delivered: 0, hops: [], latency: [] }
      tallies.set(id, tally)
      await quiesce(tally, alive.length - 1, deadline)
      const end = totals(nodes)
      warmup = {
        reach: round(tally.delivered / (alive.length - 1), 4),
        duplicateFactor: round(
          (end.received - start.received) / Math.max(1, end.delivered - start.delivered),
          2,
        ),
      }
      progress(
        `tree broadcast: reached ${tally.delivered}/${alive.length - 1}, duplicate factor ${warmup.duplicateFactor}`,
      )
      tallies.delete(id)
    }
    if (completed && churn > 0) {
      const k = Math.round(churn * n)
      const alive = nodes.filter((x) => x.alive)
      for (let i = 0; i < k && alive.length > 2; i++) {
        const victim = alive.splice(pick(random, alive.length), 1)[0]!
        victim.alive = false
        victim.mesh.close()
        victim.gossip.close()
        victim.peer.destroy()
      }
      progress(`churn: killed ${k}, joining ${k} new peers`)
      const repairStart = Date.now()
      const fresh: Node[] = []
      for (let i = 0; i < k; i++) fresh.push(await makeNode())
      await joinAll(fresh)
      const repaired = await settle('repairing')
      repairSeconds = (Date.now() - repairStart) / 1000
      if (!repaired) {
        completed = false
        phase = 'churn'
      }
    }

    // 3. Broadcasts, one at a time, from random live peers.
    const reaches: number[] = []
    const sent: { tally: Tally; targets: number }[] = []
    const before = totals(nodes)
    const duplicateFactors: number[] = []
    for (let b = 0; b < broadcasts && !overTime(); b++) {
      const start = totals(nodes)
      const alive = nodes.filter((x) => x.alive)
      const origin = alive[pick(random, alive.length)]!
      const { id } = origin.gossip.broadcast(`broadcast ${b} from ${origin.index}`)
      const tally = tallies.get(id) ?? { delivered: 0, hops: [], latency: [] }
      tallies.set(id, tally)
      await quiesce(tally, alive.length - 1, deadline)
      sent.push({ tally, targets: alive.length - 1 })
      const end = totals(nodes)
      const factor =
        end.delivered > start.delivered
          ? (end.received - start.received) / (end.delivered - start.delivered)
          : 0
      duplicateFactors.push(round(factor, 2))
      progress(
        `broadcast ${b + 1}/${broadcasts}: reached ${tally.delivered}/${alive.length - 1}, ` +
          `duplicate factor ${factor.toFixed(2)}, grafts ${end.grafts - start.grafts}`,
      )
    }
    // Stragglers still count (a loaded event loop delays some by seconds): wait once more for all of them.
    for (const { tally, targets } of sent) {
      await quiesce(tally, targets, deadline)
      reaches.push(tally.delivered / targets)
    }
    if (reaches.length < broadcasts && completed) {
      completed = false
      phase = 'broadcasts'
    }
    const after = totals(nodes)
    const state = inspect(nodes)
    maxDegree = Math.max(maxDegree, state.maxDegree)
    maxActive = Math.max(maxActive, state.maxActive)
    const hops = [...tallies.values()].flatMap((t) => t.hops)
    const latency = [...tallies.values()].flatMap((t) => t.latency)
    const delivered = after.delivered - before.delivered
    return {
      peers: n,
      live: state.live,
      seed,
      churn,
      formationSeconds: round(formationSeconds, 2),
      repairSeconds: round(repairSeconds, 2),
      reach: {
        min: reaches.length > 0 ? round(Math.min(...reaches), 4) : 0,
        mean: reaches.length > 0 ? round(reaches.reduce((a, b) => a + b, 0) / reaches.length, 4) : 0,
      },
      duplicateFactor: delivered > 0 ? round((after.received - before.received) / delivered, 2) : 0,
      duplicateFactors,
      ...(warmup ? { warmup } : {}),
      control: {
        announced: after.announced - before.announced,
        grafts: after.grafts - before.grafts,
        prunes: after.prunes - before.prunes,
      },
      disconnects,
      hops: { p50: percentile(hops, 0.5), p99: percentile(hops, 0.99) },
      latencyMs: { p50: percentile(latency, 0.5), p99: percentile(latency, 0.99) },
      maxDegree,
      maxActive,
      rssMB: Math.round(process.memoryUsage().rss / 2 ** 20),
      upgrader,
      maxLagMs: maxLag,
      completed,
      phase,
      seconds: round((Date.now() - started) / 1000, 1),
    }
  } finally {
    clearInterval(lagTimer)
    for (const node of nodes) {
      node.mesh.close()
      node.gossip.close()
      node.peer.destroy()
    }
  }
}

function startNode(
  network: MemoryNetwork,
  index: number,
  random: Random,
  seed: number,
  activeSize: number,
  upgrader: 'noise' | 'plaintext',
  tallies: Map<string, Tally>,
  large: boolean,
): Node {
  const identity = identityFromSeed(Uint8Array.from({ length: 32 }, () => pick(random, 256)))
  const mesh = createMesh({
    activeSize,
    random: seededRandom(seed * 1_000_003 + index),
    // One process serving thousands of peers lags by seconds: an answer late by that much is not lost.
    neighborTimeout: large ? 30_000 : 10_000,
  })
  // A hop costs a turn of one loop serving every peer (seconds at scale, not the network's
  // milliseconds): a shorter wait for the tree's copy would GRAFT copies that are merely late.
  const gossip = createGossip({ identity, mesh, graftTimeout: large ? 5_000 : 1_000 })
  const host = `p${index}`
  const peer = createPeer({
    transport: memoryTransport(network, { host }),
    identity,
    name: host,
    listen: `${host}:0`,
    services: [mesh.service, gossip.service],
    ...(upgrader === 'plaintext' ? { upgrader: plaintextUpgrader() } : {}),
    // The mesh repairs lost neighbours itself; the session's own reconnection would race it.
    reconnect: false,
    // Memory links report a dead end at once: pings only cost CPU at this scale.
    pingInterval: 60_000,
    idleTimeout: 180_000,
    handshakeTimeout: 30_000,
    // A disconnect's graceful close (GOODBYE, then the remote's close) gets 2 s by default; past it the
    // link is reset, and a reset overtakes a GOODBYE still held by flow control, so the remote counts a
    // dropped neighbour as dead and repairs. Under seconds of lag at scale that fed a repair storm.
    ...(large ? { stopTimeout: 30_000 } : {}),
    // The peer's housekeeping tick is a quarter of the shortest timeout: keep it rare with 10,000 peers.
    ackTimeout: 60_000,
  })
  peer.on('error', () => {})
  mesh.attach(peer)
  gossip.on('gossip', (m: GossipDelivery) => {
    let tally = tallies.get(m.id)
    if (!tally) {
      tally = { delivered: 0, hops: [], latency: [] }
      tallies.set(m.id, tally)
    }
    tally.delivered++
    tally.hops.push(m.hops)
    tally.latency.push(m.receivedAt - m.sentAt)
  })
  return { index, peer, mesh, gossip, alive: true }
}

/** PKCS #8 DER of an Ed25519 private key up to its 32-byte seed (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

/** An Ed25519 identity from a 32-byte seed, so a seeded run has the same peer ids every time. */
export function identityFromSeed(seed: Uint8Array): Identity {
  const privateKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  })
  const publicKey = createPublicKey(privateKey)
  const x = publicKey.export({ format: 'jwk' }).x!
  return { peerId: Buffer.from(x, 'base64url').toString('hex'), publicKey, privateKey }
}

/** Live peers, isolated ones, and how many are not reachable both from and to the first live peer. */
function inspect(nodes: readonly Node[]) {
  const alive = nodes.filter((x) => x.alive)
  const byId = new Map(alive.map((x) => [x.peer.id, x]))
  let maxDegree = 0
  let maxActive = 0
  let isolated = 0
  let sessions = 0
  const out = new Map<string, string[]>()
  const into = new Map<string, string[]>()
  for (const x of alive) {
    const active = x.mesh.active().filter((id) => byId.has(id))
    out.set(x.peer.id, active)
    for (const id of active) {
      const list = into.get(id)
      if (list) list.push(x.peer.id)
      else into.set(id, [x.peer.id])
    }
    if (active.length === 0) isolated++
    maxActive = Math.max(maxActive, x.mesh.active().length)
    const held = x.peer.resources().sessions
    sessions += held
    maxDegree = Math.max(maxDegree, held)
  }
  const root = alive[0]?.peer.id
  const reach = (edges: Map<string, string[]>) => {
    if (root === undefined) return 0
    const seen = new Set([root])
    const queue = [root]
    for (let i = 0; i < queue.length; i++) {
      for (const next of edges.get(queue[i]!) ?? []) {
        if (!seen.has(next)) {
          seen.add(next)
          queue.push(next)
        }
      }
    }
    return seen.size
  }
  const unreached = alive.length - Math.min(reach(out), reach(into))
  return { live: alive.length, isolated, unreached, maxDegree, maxActive, sessions }
}

function meshTotals(nodes: readonly Node[]) {
  const sum = { dials: 0, dialFailures: 0, deadNeighbors: 0, timeouts: 0 }
  for (const x of nodes) {
    sum.dials += x.mesh.stats.dials
    sum.dialFailures += x.mesh.stats.dialFailures
    sum.deadNeighbors += x.mesh.stats.deadNeighbors
    sum.timeouts += x.mesh.stats.timeouts
  }
  return sum
}

function totals(nodes: readonly Node[]) {
  const sum = { received: 0, delivered: 0, announced: 0, grafts: 0, prunes: 0 }
  for (const x of nodes) {
    sum.received += x.gossip.stats.received
    sum.delivered += x.gossip.stats.delivered
    sum.announced += x.gossip.stats.announced
    sum.grafts += x.gossip.stats.grafts
    sum.prunes += x.gossip.stats.prunes
  }
  return sum
}

/** Waits until `target` peers delivered the message, or nothing new arrived for five seconds. */
async function quiesce(tally: Tally, target: number, deadline: number): Promise<void> {
  let last = -1
  let still = 0
  while (tally.delivered < target && Date.now() < deadline) {
    await sleep(100)
    if (tally.delivered === last) {
      if (++still >= 50) return
    } else {
      still = 0
      last = tally.delivered
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0
  const sorted = values.slice().sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}

function round(v: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(v * f) / f
}
