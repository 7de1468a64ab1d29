import type { Peer } from '@parley/core'
import type { DhtNetworking } from '@parley/dht'
import type { ChatState } from './chat/chat-state.js'
import { explain } from './errors.js'
import type { FileDesk } from './files/file-desk.js'
import type { GonePeers } from './gone.js'
import type { Inbox } from './inbox.js'
import type { Logger } from './logger.js'
import { reportPeerError } from './trust.js'
import { sanitize } from './view/format.js'
import type { Reporter } from './view/reporter.js'

/** What the peer's events are shown with. */
export interface PeerEventSinks {
  readonly reporter: Reporter
  readonly logger: Logger
  readonly inbox: Inbox
  readonly gone: GonePeers
  readonly signal: AbortSignal
  readonly debug: boolean
  /** The chat view's state while it exists (unread counts, namesakes). */
  readonly chat: ChatState | undefined
  /** The DHT side of the peer, with --dht or --bootstrap. */
  readonly dht: DhtNetworking | undefined
  /** File transfer, to drop the offers of a peer that said goodbye. */
  readonly files?: FileDesk | undefined
}

/** Peer events → lines on the screen (and the log file). */
export function wirePeerEvents(peer: Peer, s: PeerEventSinks): void {
  const { reporter, logger } = s
  peer.on('message', (m) => {
    s.chat?.received(m)
    s.inbox.deliver(m)
  })
  peer.on('peer:connect', (p) => {
    s.chat?.see(p)
    s.gone.back(p.id)
    reporter.joined(p)
    // Over the DHT, say how the connection got through: direct, a punched hole, or a relay.
    const path = s.dht?.dht.pathTo(p.id)
    if (path)
      reporter.note(
        `${sanitize(p.name)} reached by ${path.path} over the DHT (${path.host}:${path.port})`,
        'dht-path',
      )
    logger.log('info', 'peer:connect', {
      peer: p.id,
      name: p.name,
      address: p.address,
      direction: p.direction,
    })
  })
  peer.on('peer:disconnect', (e) => {
    // A mesh closing a session it does not need says goodbye too ("mesh: not a neighbour"): that
    // peer is still up, and may still be talked to through the mesh or dialed again.
    const leftForGood = e.reason === 'goodbye' && !e.message.startsWith('mesh: ')
    if (leftForGood) s.gone.mark(e.peer.id)
    // Our own shutdown disconnects everyone; saying so for each peer would only be noise.
    if (e.reason !== 'local' || !s.signal.aborted) reporter.left(e)
    // After the "left" line: its offers cannot be fetched any more (a peer merely cut off may come back).
    if (leftForGood) s.files?.senderLeft(e.peer.id)
    logger.log('info', 'peer:disconnect', { peer: e.peer.id, reason: e.reason, message: e.message })
  })
  peer.on('peer:discovered', (k) => {
    logger.log('debug', 'peer:discovered', { peer: k.id, addrs: k.addrs })
    // Core learns of a peer it is handshaking with just before 'peer:connect' fires, in the same
    // tick: "learned of bob" right before "bob joined" is noise, so look again a microtask later.
    queueMicrotask(() => {
      if (!peer.peers().connected.some((p) => p.id === k.id)) reporter.discovered(k)
    })
  })
  peer.on('peer:reconnecting', (e) => {
    reporter.reconnecting(e)
    logger.log('info', 'peer:reconnecting', { peer: e.id, attempt: e.attempt, delay: e.delay })
  })
  peer.on('error', (err) => {
    // Failed inbound handshakes and bad frames: the peer keeps running. Shown only when debugging;
    // an impostor's key and a key that could not be saved are always shown.
    const shown = reportPeerError({ peer, reporter }, err)
    if (!shown && s.debug) reporter.problem(explain(err), err)
    logger.log('warn', 'peer error', { err })
  })
}
