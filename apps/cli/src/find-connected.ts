import { fingerprint, looksLikeId, type Peer, type PeerInfo } from '@parley/core'
import type { PeerRef } from './view/reporter.js'

/**
 * The connected peer `target` names, the way core's `send` resolves it: id, address, fingerprint or
 * id prefix, then a unique name. Only used to label output; core does the real resolution.
 */
export function findConnected(peer: Peer, target: string): PeerInfo | undefined {
  const connected = peer.peers().connected
  // The address a peer was reached at, never one it claims to listen at: a claim is anyone's to make.
  const exact = connected.find((p) => p.id === target || p.address === target)
  if (exact) return exact
  const prefix = target.replace(/:/g, '').toLowerCase()
  if (/^[0-9a-f]{4,}$/.test(prefix)) {
    const byId = connected.filter((p) => p.id.startsWith(prefix))
    if (byId.length === 1) return byId[0]
  }
  const named = namedLike(peer, target)
  return named.length === 1 ? connected.find((p) => p.id === named[0]!.id) : undefined
}

/**
 * Whom `name` may mean: the peers core says it may mean (the one saved with it, else every peer known
 * first-hand by it), else the connected peers called so; none for a name written as an id (any peer
 * may take any name). Only one of them may be picked by that name; several need a fingerprint.
 */
export function namedLike(peer: Peer, name: string): PeerRef[] {
  if (looksLikeId(name)) return []
  const connected = peer.peers().connected
  const keys = peer.namedKeys(name)
  if (keys.length === 0) return connected.filter((p) => p.name === name)
  return keys.map((id) => connected.find((p) => p.id === id) ?? { id, name })
}

/** Whether `target` names this peer itself (its name, id or fingerprint): "that is you", not "not found". */
export function namesSelf(peer: Pick<Peer, 'id' | 'name'>, target: string): boolean {
  const t = target.trim()
  const bare = (text: string) => text.replace(/:/g, '').toLowerCase()
  return t === peer.name || t === peer.id || bare(t) === bare(fingerprint(peer.id))
}
