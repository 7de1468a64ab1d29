import { looksLikeId, type Peer, type PeerInfo } from '@parley/core'

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
  return looksLikeId(target) ? undefined : uniqueNamed(connected, target)
}

/** The connected peers called `name`; none when `name` is written as an id (any peer may take any name). */
export function namedLike(connected: readonly PeerInfo[], name: string): PeerInfo[] {
  return looksLikeId(name) ? [] : connected.filter((p) => p.name === name)
}

function uniqueNamed(connected: readonly PeerInfo[], name: string): PeerInfo | undefined {
  const byName = namedLike(connected, name)
  return byName.length === 1 ? byName[0] : undefined
}
