import { type BroadcastResult, FINAL_DIAL_CODES, fingerprint, type Peer, type PeerInfo } from '@parley/core'
import type { App } from './app-context.js'
import { explain } from './errors.js'
import { findConnected } from './find-connected.js'
import { connectLegacyAll, legacyTarget, sendLegacy } from './legacy.js'
import { checkAddress, normalizeAddress } from './options.js'
import { sanitize } from './view/format.js'
import type { PeerRef } from './view/reporter.js'

/** Peer-exchange queries from the menu/`peers` give up after this long. */
const QUERY_TIMEOUT_MS = 3_000

const ref = (p: { id: string; name: string }): PeerRef => ({ id: p.id, name: p.name })

/**
 * Sends one message and reports the outcome. Never rejects. `as` names the peer when `target` is its
 * id and it is not connected (the chat view's conversation), so a failure does not show a bare id.
 */
export async function sendMessage(app: App, target: string, text: string, as?: PeerRef): Promise<boolean> {
  // Clear text only to a target written legacy:<…>; everything else is a Parley peer's.
  const legacy = legacyTarget(app, target)
  if (legacy !== undefined) {
    if ('address' in legacy) return sendLegacy(app, legacy.address, text)
    if (legacy.refused) app.reporter.notDelivered(target, legacy.refused)
    return false
  }
  const known = findConnected(app.peer, target)
  const named = known ? ref(known) : as
  const label = named ? named.name : target
  const release = app.hold?.(known ? [known.id] : []) ?? (() => {})
  try {
    // No abort signal: on quit, core's stop() gives in-flight messages a bounded chance to be
    // acknowledged, so the outcome printed here is the real one rather than "cancelled".
    const result = await app.peer.send(target, text)
    const to = known ?? app.peer.peers().connected.find((p) => p.id === result.peerId)
    app.reporter.delivered(to ? ref(to) : { id: result.peerId, name: label }, text, result.id)
    app.logger.log('info', 'sent', { to: result.peerId, id: result.id })
    return true
  } catch (err) {
    const problem = explain(err, { target: label, address: named ? undefined : target })
    app.reporter.notDelivered(target, problem, named, err)
    app.logger.log('warn', 'send failed', { target, err })
    return false
  } finally {
    release()
  }
}

/**
 * Broadcasts `text`: to every connected peer, and on a mesh peer also relayed through the mesh to the
 * peers this one is not connected to. One line per connected peer, each as soon as that peer
 * acknowledges (or fails), and each peer's own messages are held only until its own line is out: one
 * peer slow to acknowledge does not hold up what the others say. Never rejects.
 */
export async function broadcastMessage(app: App, text: string): Promise<void> {
  const peers = new Map(app.peer.peers().connected.map((p) => [p.id, p]))
  if (peers.size === 0) {
    app.reporter.note('no connected peers to broadcast to — connect to one first', 'note')
    return
  }
  const holds = new Map([...peers.keys()].map((id) => [id, app.hold?.([id]) ?? (() => {})]))
  const told = (r: BroadcastResult) => {
    const p = peers.get(r.peerId) ?? { id: r.peerId, name: fingerprint(r.peerId) }
    if (r.ok) app.reporter.delivered(ref(p), text, r.result.id)
    else app.reporter.notDelivered(p.name, explain(r.error, { target: p.name }), ref(p), r.error)
    holds.get(r.peerId)?.()
    holds.delete(r.peerId)
  }
  try {
    const results = await app.peer.broadcast(text, { onResult: told })
    app.logger.log('info', 'broadcast', {
      peers: results.length,
      delivered: results.filter((r) => r.ok).length,
    })
  } catch (err) {
    app.reporter.problem(explain(err), err)
  } finally {
    for (const release of holds.values()) release()
  }
}

/** Connects to one `host:port` and reports it. Never rejects; resolves with the peer, if connected. */
export async function connectTo(app: App, address: string): Promise<PeerInfo | undefined> {
  const bad = checkAddress(address)
  if (bad !== undefined) {
    app.reporter.notConnected(address, { code: 'INVALID_ADDRESS', sentence: bad })
    return undefined
  }
  const at = normalizeAddress(address)
  const dialed = app.reporter.dialing?.()
  try {
    const info = await app.peer.connect(at, { signal: app.signal })
    app.reporter.connected(info, at)
    return info
  } catch (err) {
    app.logger.log('warn', 'connect failed', { address, err })
    // Cut short by our own shutdown: not the remote's fault, and "stopped" has been said already.
    if (!app.signal.aborted) app.reporter.notConnected(at, explain(err, { address: at }), undefined, err)
    return undefined
  } finally {
    dialed?.()
  }
}

/** How `--peer` is retried: exponential backoff, doubling from `initialDelay` up to `maxDelay`. */
export interface RetryPolicy {
  /** @default 500 ms */
  initialDelay: number
  /** @default 15_000 ms */
  maxDelay: number
  /** Dials in all, the first included. @default 10 (about a minute and a half) */
  maxAttempts: number
}

export const DEFAULT_RETRY: RetryPolicy = { initialDelay: 500, maxDelay: 15_000, maxAttempts: 10 }

/**
 * Connects to a `--peer` address, retrying with backoff while it is not up yet (refused, timed out,
 * unreachable): peers are often started in any order. The first failure and the last are reported;
 * the ones in between are one "retrying" line each at most every few attempts. Never rejects.
 */
export async function connectWithRetry(
  app: App,
  address: string,
  policy: RetryPolicy = DEFAULT_RETRY,
): Promise<PeerInfo | undefined> {
  let delay = policy.initialDelay
  /** The wait the last "trying again" line announced, in seconds. */
  let announced = 0
  for (let attempt = 1; attempt <= policy.maxAttempts && !app.signal.aborted; attempt++) {
    const dialed = app.reporter.dialing?.()
    try {
      const info = await app.peer.connect(address, { signal: app.signal })
      app.reporter.connected(info, address)
      return info
    } catch (err) {
      dialed?.() // now, not only in finally: joins of other peers must not wait out the backoff below
      app.logger.log('warn', 'connect failed', { address, attempt, err })
      if (app.signal.aborted) return undefined
      const problem = explain(err, { address })
      const final = FINAL_DIAL_CODES.has(problem.code) || attempt === policy.maxAttempts
      if (final) {
        const tries = attempt > 1 ? ` (gave up after ${attempt} tries)` : ''
        app.reporter.notConnected(
          address,
          { ...problem, sentence: `${problem.sentence}${tries}` },
          undefined,
          err,
        )
        return undefined
      }
      // The first failure, then attempts 2, 4, 8, … when the wait they announce is another one.
      const seconds = Math.max(1, Math.round(delay / 1000))
      if (attempt === 1 || ((attempt & (attempt - 1)) === 0 && seconds !== announced)) {
        announced = seconds
        app.reporter.notConnected(
          address,
          { ...problem, sentence: `${problem.sentence} (trying again in ${seconds}s)` },
          undefined,
          err,
        )
      }
      await sleep(delay, app.signal)
      delay = Math.min(policy.maxDelay, delay * 2)
    } finally {
      dialed?.()
    }
  }
  return undefined
}

/** Resolves after `ms`, or at once when `signal` aborts. The timer never holds the process. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    timer.unref?.()
    signal.addEventListener('abort', done, { once: true })
  })
}

/** Connects to every known, unconnected peer (core asks the connected ones first); one line per peer. */
export async function connectToAll(app: App): Promise<void> {
  const dialed = app.reporter.dialing?.()
  try {
    await reportConnectToAll(app)
  } finally {
    dialed?.()
  }
}

async function reportConnectToAll(app: App): Promise<void> {
  let results: Awaited<ReturnType<Peer['connectToActive']>>
  try {
    results = await app.peer.connectToActive({ signal: app.signal })
  } catch (err) {
    if (!app.signal.aborted) app.reporter.problem(explain(err), err)
    return
  }
  if (app.signal.aborted) return
  // A large network: the peer joined the mesh (broadcasts are relayed) instead of dialing everyone.
  const notDialed = (results.skipped ?? []).filter((s) => s.reason === 'degree-reached').length
  if (notDialed > 0) {
    app.reporter.note(
      `${notDialed} known peer${notDialed === 1 ? '' : 's'} not dialed: enough connections already; broadcasts reach them through the mesh`,
      'note',
    )
  }
  if (results.length === 0 && notDialed === 0 && !app.legacy?.peers().length) {
    app.reporter.note(
      'no peers left to connect to: every peer this one knows of is connected or has left',
      'note',
    )
    return
  }
  const goneNames: string[] = []
  for (const r of results) {
    if (r.ok) app.reporter.connected(r.peer, r.address)
    else if (app.gone?.since(r.peerId) !== undefined || r.peerId === app.peer.id) goneNames.push(r.name)
    else {
      app.reporter.notConnected(
        r.address,
        explain(r.error, { address: r.address ?? r.name }),
        ref({ id: r.peerId, name: r.name }),
      )
      // Unreachable now: marked gone, so the next "connect to all" sums it up instead of repeating it.
      app.gone?.mark(r.peerId)
    }
  }
  if (goneNames.length > 0) {
    const names = goneNames.slice(0, 5).map((n) => sanitize(n))
    const more = goneNames.length > 5 ? ` and ${goneNames.length - 5} more` : ''
    app.reporter.note(
      `not reached ${goneNames.length} peer${goneNames.length === 1 ? '' : 's'} that left earlier (${names.join(', ')}${more})`,
    )
  }
  // Legacy peers never answer a handshake: "connecting" to them is announcing ourselves.
  await connectLegacyAll(app)
}

/**
 * Asks every connected peer whom it knows (peer exchange), then prints the table. Peers that do
 * not answer in time are mentioned, not fatal.
 */
export async function showPeers(app: App, query: boolean): Promise<void> {
  if (query) {
    const connected = app.peer.peers().connected
    const answers = await Promise.allSettled(
      connected.map((p) => app.peer.queryPeers(p.id, { timeout: QUERY_TIMEOUT_MS, signal: app.signal })),
    )
    if (app.signal.aborted) return
    const silent = answers.filter((a) => a.status === 'rejected').length
    if (silent > 0)
      app.reporter.note(`${silent} of ${connected.length} peers did not answer the peer query`, 'note')
  }
  const list = app.peer.peers()
  const gone = app.gone
  // Your own id (a peer may relay it back) and peers gone long ago are not worth a row.
  const known = list.known.filter((k) => k.id !== app.peer.id && !gone?.forgotten(k.id))
  app.reporter.peers({ ...list, known }, app.legacy?.peers(), gone ? (id) => gone.since(id) : undefined)
}
