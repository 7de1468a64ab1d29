import type { ResolvedLimits } from './limits.js'
import { type KnownEntry, type PeerStore, sourceKey } from './peer-store.js'
import type {
  ConnectResult,
  ConnectToActiveOptions,
  ConnectToActiveResult,
  SkippedPeer,
  SkipReason,
} from './peer-types.js'
import type { Session } from './session.js'
import { mapConcurrent } from './util.js'

/** Addresses of one known peer that connect-to-active tries. */
const MAX_ADDRS_PER_PEER = 2

/** What connect-to-active needs of the peer. */
export interface ConnectToActiveDeps {
  store: PeerStore
  sessions: ReadonlyMap<string, Session>
  coolingUntil: (id: string) => number | undefined
  limits: ResolvedLimits
  /** Peer exchange with one connected peer (answers are merged into the store). */
  query: (id: string) => Promise<unknown>
  dial: (k: { id: string; name: string; addrs: string[] }) => Promise<ConnectResult>
}

/**
 * Connect-to-active (docs/ARCHITECTURE.md, "Peer exchange"): query the connected peers, then dial the
 * known ones — all of them in a small network, up to `maxDegree` sessions in a large one — within the
 * call's dial budget, accounting for every known peer not dialed.
 */
export async function connectToActive(
  deps: ConnectToActiveDeps,
  options?: ConnectToActiveOptions,
): Promise<ConnectToActiveResult> {
  const maxDegree = options?.maxDegree ?? deps.limits.maxDegree
  const maxDials = options?.maxDials ?? deps.limits.maxDialsPerCall
  const results: ConnectResult[] = []
  const skipped = new Map<string, SkippedPeer>()
  const already = new Map<string, { peerId: string; name: string }>()
  const attempted = new Set<string>()
  const rounds = options?.rounds ?? 3
  const sessions = deps.sessions
  const online = () => {
    let n = 0
    for (const s of sessions.values()) if (s.online) n++
    return n
  }
  const skip = (k: { id: string; name: string }, reason: SkipReason) =>
    skipped.set(k.id, { peerId: k.id, name: k.name, reason })
  let dials = 0
  for (let round = 0; round < Math.max(1, rounds); round++) {
    if (rounds > 0) {
      await Promise.allSettled([...sessions.keys()].map((id) => deps.query(id)))
    }
    const todo: KnownEntry[] = []
    for (const k of deps.store.values()) {
      if (attempted.has(k.id)) continue
      if (sessions.get(k.id)?.online) {
        already.set(k.id, { peerId: k.id, name: k.name })
        skipped.delete(k.id)
      } else if (k.gone) skip(k, 'gone')
      else if ((deps.coolingUntil(k.id) ?? 0) > Date.now()) skip(k, 'cooling-down')
      else if (k.addrs.length === 0) skip(k, 'no-address')
      else todo.push(k)
    }
    if (todo.length === 0) break
    // A small network (everyone fits in the degree) is connected in full, as it always was; in a large
    // one only up to the degree, in random order (see dialOrder) so that peers calling this at once do
    // not all dial the same few, and no one source decides most of whom we dial.
    const connected = online()
    const room = connected + todo.length <= maxDegree ? todo.length : Math.max(0, maxDegree - connected)
    const budget = Math.max(0, maxDials - dials)
    const ordered = dialOrder(todo)
    const picked = ordered.slice(0, Math.min(room, budget))
    for (const k of ordered.slice(picked.length))
      skip(k, picked.length < room ? 'dial-budget' : 'degree-reached')
    if (picked.length === 0) break
    dials += picked.length
    for (const k of picked) {
      attempted.add(k.id)
      skipped.delete(k.id)
    }
    results.push(
      ...(await mapConcurrent(picked, deps.limits.connectConcurrency, (k) =>
        // Addresses are claims, first-hand or not: the first two are tried (first-hand ones start with
        // where the peer was reached; see reachableFirst), so no peer can make us dial dozens for it.
        deps.dial({ ...k, addrs: k.addrs.slice(0, MAX_ADDRS_PER_PEER) }),
      )),
    )
    if (options?.signal?.aborted) break
  }
  // Not enumerable: the array still compares, spreads and serializes as the list of dials it always was.
  return Object.defineProperties(results, {
    alreadyConnected: { value: [...already.values()], enumerable: false },
    skipped: { value: [...skipped.values()], enumerable: false },
  }) as ConnectToActiveResult
}

/**
 * The order to dial known peers in: those we dialled before first (we reached them there), then the
 * rest taking turns by whose say-so each stands on (`sourceKey`: the peer that told us, or the network
 * group a stranger connected from), in random order within each. Forty throwaway keys connecting from
 * one host, or one peer's answer naming forty, get one turn per round, like any other single source.
 */
export function dialOrder(todo: readonly KnownEntry[]): KnownEntry[] {
  const dialled = todo.filter((k) => k.dialled)
  const bySource = new Map<string, KnownEntry[]>()
  for (const k of todo) {
    if (k.dialled) continue
    const key = sourceKey(k) ?? `id:${k.id}`
    const list = bySource.get(key)
    if (list) list.push(k)
    else bySource.set(key, [k])
  }
  shuffle(dialled)
  const queues = [...bySource.values()]
  shuffle(queues)
  for (const q of queues) shuffle(q)
  const out = dialled
  for (let turn = 0; out.length < todo.length; turn++) {
    for (const q of queues) if (turn < q.length) out.push(q[turn]!)
  }
  return out
}

/** Fisher–Yates, in place. */
function shuffle<T>(items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[items[i], items[j]] = [items[j]!, items[i]!]
  }
}
