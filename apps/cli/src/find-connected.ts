import type { Peer, PeerInfo } from '@parley/core'

/**
 * The connected peer `target` names, the way core's `send` resolves it: id, address, fingerprint or
 * id prefix, then a unique name. Only used to label output; core does the real resolution.
 */
export function findConnected(peer: Peer, target: string): PeerInfo | undefined {
  const connected = peer.peers().connected
  const exact = connected.find(
    (p) => p.id === target || p.address === target || p.listenAddrs.includes(target),
  )
  if (exact) return exact
  const prefix = target.replace(':', '').toLowerCase()
  if (/^[0-9a-f]{4,}$/.test(prefix)) {
    const byId = connected.filter((p) => p.id.startsWith(prefix))
    if (byId.length === 1) return byId[0]
  }
  const byName = connected.filter((p) => p.name === target)
  return byName.length === 1 ? byName[0] : undefined
}
