import { fingerprint } from './identity.js'
import type { KnownPeers } from './known-peers.js'
import { PeerError } from './peer-errors.js'
import type { KnownEntry, PeerStore } from './peer-store.js'
import type { Session } from './session.js'
import type { Trust } from './trust.js'

// How a peer finds whom the user means: a session by id, id prefix, verified address or saved name,
// and a known (unconnected) peer by id or id prefix.

/** The session `target` names: its id, a unique id prefix (≥ 4 hex digits), an address it was reached at, or a unique name. */
export function findSession(
  sessions: Map<string, Session>,
  trust: Trust,
  store: PeerStore,
  target: string,
): Session | undefined {
  const byId = sessions.get(target)
  if (byId) return byId
  const byAddress = sessionByAddress(sessions, trust.known, target)
  if (byAddress) return byAddress
  const prefix = target.replace(/:/g, '').toLowerCase()
  if (/^[0-9a-f]{4,}$/.test(prefix)) {
    const matches = [...sessions.values()].filter((s) => s.id.startsWith(prefix))
    if (matches.length === 1) return matches[0]
    // Written as a peer's id (or prefix, or fingerprint): a peer that calls itself so is not that peer.
    if (looksLikeId(target) || [...store.values()].some((k) => k.id.startsWith(prefix))) return undefined
  }
  const keys = keysNamed(trust, store, target)
  if (keys.length > 0) return keys.length === 1 ? sessions.get(keys[0]!) : undefined
  const byName = [...sessions.values()].filter((s) => s.remote.name === target)
  return byName.length === 1 ? byName[0] : undefined
}

/**
 * The session reached at `address`: only one this peer dialed there itself (and so verified), or
 * whose connection comes from it, unless the key saved for that address is another's. Addresses a peer
 * claims for itself are hints for dialing, never identity: a claim alone would let anyone take over
 * sends to an address. A connection's source is not proof either: once a peer has let go of its port,
 * anyone on its host (or behind a NAT that keeps ports) can connect from it.
 */
export function sessionByAddress(
  sessions: Map<string, Session>,
  known: KnownPeers,
  address: string,
): Session | undefined {
  for (const s of sessions.values()) {
    if (!s.online) continue
    for (const l of s.links) {
      if (l.dialedAddress === address) return s
      if (l.conn.remoteAddress === address && known.check(address, s.id).status !== 'mismatch') return s
    }
  }
  return undefined
}

/**
 * Whether `target` is written as a peer id, id prefix or fingerprint (8 hex digits or more, colons
 * aside): it then never means a display name, which any peer may choose.
 */
export function looksLikeId(target: string): boolean {
  return /^[0-9a-f]{8,}$/i.test(target.replace(/:/g, ''))
}

/** A known, unconnected peer by full id or unique id prefix (≥ 8 hex digits), with an address. */
export function knownByIdOrPrefix(store: PeerStore, target: string): KnownEntry | undefined {
  const exact = store.get(target)
  if (exact) return exact.addrs.length > 0 ? exact : undefined
  const prefix = target.replace(/:/g, '').toLowerCase()
  if (!/^[0-9a-f]{8,}$/.test(prefix)) return undefined
  let found: KnownEntry | undefined
  for (const k of store.values()) {
    if (!k.id.startsWith(prefix)) continue
    if (found) return undefined
    found = k
  }
  return found && found.addrs.length > 0 ? found : undefined
}

/**
 * The keys a name may mean: the one it is saved with (when one saved entry has it), else every key we
 * know first-hand by it. A name means a peer only when this is one key: names are claims, and with two
 * keys known by one name (a stranger calling itself "alice" while the alice we knew is away) a send by
 * that name could reach the wrong one.
 */
export function keysNamed(trust: Trust, store: PeerStore, name: string): string[] {
  const saved = trust.nameOwner(name)
  return saved !== undefined ? [saved] : store.firstHandNamed(name)
}

/**
 * Why nothing connected matches `target`; given the sessions and the keys the name may mean
 * (keysNamed), it also says when the name means another key than the connected peer calling itself
 * so, or several keys.
 */
export function notConnected(
  target: string,
  sessions?: Map<string, Session>,
  keys: readonly string[] = [],
): PeerError {
  if (keys.length > 1) {
    return new PeerError(
      'NOT_CONNECTED',
      `"${target}" is the name of ${keys.length} peers (${keys
        .slice(0, 3)
        .map((k) => fingerprint(k))
        .join(', ')}); send to one by its fingerprint`,
    )
  }
  const owner = keys[0]
  const namesake = sessions && [...sessions.values()].find((s) => s.remote.name === target)
  if (namesake && owner !== undefined && owner !== namesake.id) {
    return new PeerError(
      'NOT_CONNECTED',
      `"${target}" names the peer ${owner.slice(0, 16)}, which is not connected; the connected peer that calls itself so is ${namesake.id.slice(0, 16)} (send to its id to reach it)`,
    )
  }
  return new PeerError('NOT_CONNECTED', `no connected peer matches "${target}"`)
}
