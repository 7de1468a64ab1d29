import { networkInterfaces } from 'node:os'
import {
  type DisconnectEvent,
  fingerprint,
  type KnownPeer,
  type LegacyDrop,
  type LegacyLeaveReason,
  type LegacyMessage,
  type LegacyPeerInfo,
  type PeerInfo,
  type PeerList,
  type ReceivedMessage,
  type ReconnectingEvent,
} from '@parley/core'
import type { Explained } from '../errors.js'
import {
  type FileListing,
  type FileReport,
  fileJson,
  fileLine,
  fileListJson,
  fileListText,
} from '../files/file-report.js'
import {
  block,
  clock,
  LEGACY_MARK,
  leftBecause,
  legacyPeersTable,
  peersTable,
  reachableAt,
  sanitize,
  terminalSafe,
  visibleLength,
  who,
  wrapBlock,
} from './format.js'
import type { Style } from './style.js'

/** Who a line is about. */
export interface PeerRef {
  id: string
  name: string
}

/** What the banner shows once the peer listens. */
export interface ReadyInfo {
  id: string
  name: string
  addresses: readonly string[]
  version: string
  /** Where the identity key lives; undefined when it is ephemeral. */
  dataDir: string | undefined
}

/** Something about a legacy (plain-text, unauthenticated) peer, for {@link Reporter.legacy}. */
export type LegacyReport =
  | { kind: 'message'; message: LegacyMessage }
  | { kind: 'joined'; peer: LegacyPeerInfo }
  | { kind: 'left'; peer: LegacyPeerInfo; reason: LegacyLeaveReason }
  | { kind: 'dropped'; drop: LegacyDrop }
  /** A chat message went out (the legacy protocol never confirms delivery). */
  | { kind: 'sent'; to: Pick<LegacyPeerInfo, 'address' | 'name'>; text: string }
  /** Connect-to-active sent `connect`. */
  | { kind: 'announced'; to: Pick<LegacyPeerInfo, 'address' | 'name'> }

/**
 * Everything the CLI tells the user, in one place, so the menu, the line commands and the peer
 * events print the same way. Implemented as text (terminal or plain) and as NDJSON.
 */
export interface Reporter {
  ready(info: ReadyInfo): void
  message(m: ReceivedMessage): void
  joined(p: PeerInfo): void
  left(e: DisconnectEvent): void
  discovered(k: KnownPeer): void
  reconnecting(e: ReconnectingEvent): void
  delivered(to: PeerRef, text: string, messageId: string): void
  notDelivered(target: string, problem: Explained, to?: PeerRef, err?: unknown): void
  connected(p: PeerInfo, address: string): void
  /**
   * A dial the user asked for (`/connect`, connect-to-all, `--peer`) begins; call the returned function
   * once it has been reported. Until then an outbound join waits: the dial's own `connected` line
   * says it, so one connection is one line. Joins the dial did not report are said when it ends.
   */
  dialing?(): () => void
  notConnected(address: string | undefined, problem: Explained, to?: PeerRef, err?: unknown): void
  /** Parley peers, then legacy ones when `--legacy` is on. */
  peers(
    list: PeerList,
    legacy?: readonly LegacyPeerInfo[],
    goneSince?: (id: string) => number | undefined,
  ): void
  /** Legacy peers' messages and events, always marked as legacy and unverified. */
  legacy(report: LegacyReport): void
  /** An informational line ("no connected peers"). */
  note(text: string, kind?: string): void
  /** A failure that is not about delivery or connecting: one sentence; the stack only when debugging. */
  problem(problem: Explained, err?: unknown): void
  /** A file transfer event (offers, progress, saved, failed). */
  file(report: FileReport): void
  /** Offers waiting and transfers running (`/files`). */
  files(list: FileListing): void
  /** `told`: how many peers were connected, so got a GOODBYE. */
  stopped(code: number, told: number): void
}

export interface TextReporterInit {
  out: (text: string) => void
  err: (text: string) => void
  style: Style
  debug: boolean
  /** Multi-line banner for the interactive screen; one line for plain output. */
  banner: 'full' | 'line'
  now?: () => number
  /** How a peer is named; undefined falls back to `name (fingerprint)`. The chat view names peers shortly. */
  who?: (p: PeerRef) => string | undefined
  /** Names of the other peers known, to flag a name that looks like one of them. */
  names?: () => Iterable<string>
  /** Shortens a long message body for the screen (the chat view folds them). @default unchanged */
  fold?: (text: string) => string
  /** Commands in hints are written with a leading `/` (the chat view). @default false */
  slash?: boolean
  /** The numbered menu is showing (not the chat view): hints name its items rather than commands. */
  menu?: () => boolean
  /** The terminal's width, to wrap message bodies to; undefined (not a terminal) leaves lines whole. */
  columns?: () => number | undefined
}

/** Human-readable lines: `12:00:01 alice (ab12:cd34): hello`. */
export function textReporter(init: TextReporterInit): Reporter {
  const { style, debug } = init
  // Whatever a line holds, only our own colour codes reach the terminal (see terminalSafe).
  const out = (text: string) => init.out(terminalSafe(text))
  const err = (text: string) => init.err(terminalSafe(text))
  const now = init.now ?? Date.now
  const stamp = () => style('dim', clock(now()))
  const name = (p: PeerRef) => init.who?.(p) ?? who(style, p, init.names?.() ?? [])
  const fold = init.fold ?? ((text: string) => text)
  const line = (text: string) => out(`${stamp()} ${text}`)
  // A message body: continuation lines start under its first character, and on a terminal the body
  // is wrapped here, so none of it starts a row at the left edge, where it could pass for a line.
  const said = (head: string, text: string) => {
    const first = `${stamp()} ${head}`
    const body = sanitize(text, true)
    const columns = init.columns?.()
    out(columns ? wrapBlock(first, body, columns) : `${first}${block(body, visibleLength(first))}`)
  }
  const bad = (text: string) => err(`${stamp()} ${style('red', '✖')} ${text}`)
  const stack = (e: unknown) => {
    if (debug && e instanceof Error && e.stack) err(style('dim', e.stack))
  }
  // Joins held while the user's dials run (see `dialing`); bounded by the peer's own connection limit.
  let dials = 0
  const held = new Map<string, PeerInfo>()
  const joined = (p: PeerInfo) =>
    line(
      `${style('green', '+')} ${name(p)} joined ${style('dim', `(${p.direction}, ${sanitize(reachableAt(p))})`)}`,
    )
  return {
    ready(info) {
      const fp = fingerprint(info.id)
      // Every address: a peer listening on IPv4 and IPv6 (or TCP and the DHT) is reachable at each.
      const addresses =
        info.addresses.length > 0 ? info.addresses.map((a) => sanitize(a)) : ['(not listening)']
      if (init.banner === 'line') {
        line(`listening on ${addresses.join(', ')} as ${sanitize(info.name)} (${fp}), peer id ${info.id}`)
        return
      }
      const rows = [
        `${style('bold', `Parley ${info.version}`)} · ${style(['bold', 'cyan'], sanitize(info.name))}`,
        ...addresses.map((a, i) => `  ${i === 0 ? 'listening on' : '            '}  ${style('bold', a)}`),
        ...reachable(info.addresses).map((a) => `  reachable at  ${a}`),
        `  fingerprint   ${style('bold', fp)}`,
        `  peer id       ${style('dim', info.id)}`,
        `  identity      ${info.dataDir ? `kept in ${info.dataDir}` : 'ephemeral (use --data-dir to keep it)'}`,
      ]
      out(rows.join('\n'))
    },
    message(m) {
      said(`${name(m.from)}: `, fold(m.text))
    },
    joined(p) {
      if (dials > 0 && p.direction === 'outbound') held.set(p.id, p)
      else joined(p)
    },
    left(e) {
      line(`${style('yellow', '-')} ${name(e.peer)} left: ${leftBecause(e.reason, e.message)}`)
    },
    discovered(k) {
      const where = k.addrs.length > 0 ? ` at ${k.addrs.map((a) => sanitize(a)).join(', ')}` : ''
      line(style('dim', `· learned of ${sanitize(k.name)} (${fingerprint(k.id)})${where}`))
    },
    reconnecting(e) {
      // The first waits are fractions of a second: "in 1s" twice within one second read as a lie.
      const seconds = e.delay < 950 ? (e.delay / 1000).toFixed(1) : String(Math.round(e.delay / 1000))
      line(
        style(
          'yellow',
          `↻ reconnecting to ${sanitize(e.name)} (${fingerprint(e.id)}) in ${seconds}s, attempt ${e.attempt}`,
        ),
      )
    },
    delivered(to, text, _messageId) {
      said(`${style('green', '✔')} you → ${name(to)}: `, fold(text))
    },
    notDelivered(target, problem, to, e) {
      bad(`not delivered to ${to ? name(to) : sanitize(target)}: ${problem.sentence}`)
      stack(e)
    },
    connected(p, address) {
      held.delete(p.id)
      line(`${style('green', '✔')} connected to ${name(p)} at ${sanitize(address)}`)
    },
    dialing() {
      dials++
      let ended = false
      return () => {
        if (ended) return
        ended = true
        if (--dials > 0) return
        for (const p of held.values()) joined(p)
        held.clear()
      }
    },
    notConnected(address, problem, to, e) {
      const label = to ? `${name(to)}${address ? ` at ${sanitize(address)}` : ''}` : sanitize(address ?? '?')
      bad(`could not connect to ${label}: ${problem.sentence}`)
      stack(e)
    },
    peers(list, legacy, goneSince) {
      out(peersTable(list, style, now(), goneSince, init.columns?.()))
      if (legacy !== undefined) out(legacyPeersTable(legacy, style, now()))
    },
    legacy(report) {
      const mark = style('yellow', LEGACY_MARK)
      // A peer not heard from yet has no name: its address alone, once.
      const peer = (p: Pick<LegacyPeerInfo, 'address' | 'name'>) =>
        p.name === undefined
          ? `${sanitize(p.address)} ${mark}`
          : `${style('bold', sanitize(p.name))} ${mark} ${style('dim', `(${sanitize(p.address)})`)}`
      switch (report.kind) {
        case 'message':
          said(`${peer(report.message.from)}: `, fold(report.message.text))
          return
        case 'joined':
          line(`${style('green', '+')} ${peer(report.peer)} joined`)
          return
        case 'left': {
          const why = { exit: 'said exit', evicted: 'forgotten (legacy peer list full)', removed: 'removed' }
          line(`${style('yellow', '-')} ${peer(report.peer)} left: ${why[report.reason]}`)
          return
        }
        case 'dropped':
          line(
            style(
              'yellow',
              `! dropped legacy input from ${sanitize(report.drop.remoteAddress)}: ${sanitize(report.drop.reason)}`,
            ),
          )
          return
        case 'sent':
          said(`${style('cyan', '→')} you → ${peer(report.to)}: `, report.text)
          return
        case 'announced':
          line(`${style('green', '✔')} sent connect to ${peer(report.to)}`)
          return
      }
    },
    note(text) {
      line(text)
    },
    problem(problem, e) {
      bad(problem.sentence)
      stack(e)
    },
    file(report) {
      const said = fileLine(report, {
        style,
        who: name,
        slash: init.slash ?? false,
        menu: init.menu?.() ?? false,
        now,
      })
      if (said) (said.bad ? err : out)(said.text)
    },
    files(list) {
      out(fileListText(list, { style, who: name, slash: init.slash ?? false, now }))
    },
    stopped(code, told) {
      const how = code === 0 ? 'stopped' : `stopped (exit ${code})`
      line(told > 0 ? `${how}; said goodbye to every peer` : `${how}; no peer was connected`)
    },
  }
}

/** Non-loopback addresses of this machine, when listening on a wildcard host. */
function reachable(addresses: readonly string[]): string[] {
  const first = addresses[0]
  if (!first) return []
  const m = /^(0\.0\.0\.0|\[::\]):(\d+)$/.exec(first)
  if (!m) return []
  const out: string[] = []
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal) continue
      if (a.family === 'IPv4') out.push(`${a.address}:${m[2]}`)
      else if (m[1] === '[::]' && !a.address.startsWith('fe80')) out.push(`[${a.address}]:${m[2]}`)
    }
  }
  return out.slice(0, 4)
}

/** NDJSON: one object a line, `type` first, `time` as ISO 8601. */
export function jsonReporter(
  emit: (line: string) => void,
  debug: boolean,
  now: () => number = Date.now,
): Reporter {
  const send = (type: string, fields: Record<string, unknown>) =>
    emit(`${JSON.stringify({ type, time: new Date(now()).toISOString(), ...fields })}\n`)
  const ref = (p: PeerRef) => ({ id: p.id, name: p.name, fingerprint: fingerprint(p.id) })
  const info = (p: PeerInfo) => ({ ...p, fingerprint: fingerprint(p.id) })
  const stack = (e: unknown) => (debug && e instanceof Error ? { stack: e.stack } : {})
  return {
    ready: (r) =>
      send('ready', {
        name: r.name,
        id: r.id,
        fingerprint: fingerprint(r.id),
        addresses: r.addresses,
        version: r.version,
      }),
    message: (m) =>
      send('message', {
        id: m.id,
        from: ref(m.from),
        text: m.text,
        sentAt: m.sentAt,
        receivedAt: m.receivedAt,
      }),
    joined: (p) => send('peer:connect', { peer: info(p) }),
    left: (e) => send('peer:disconnect', { peer: info(e.peer), reason: e.reason, message: e.message }),
    discovered: (k) => send('peer:discovered', { peer: { ...k, fingerprint: fingerprint(k.id) } }),
    reconnecting: (e) => send('peer:reconnecting', { peer: ref(e), attempt: e.attempt, delay: e.delay }),
    delivered: (to, text, messageId) => send('delivered', { to: ref(to), id: messageId, text }),
    notDelivered: (target, p, to, e) =>
      send('not-delivered', {
        target,
        ...(to ? { to: ref(to) } : {}),
        code: p.code,
        error: p.sentence,
        ...stack(e),
      }),
    connected: (p, address) => send('connected', { address, peer: info(p) }),
    notConnected: (address, p, to, e) =>
      send('not-connected', {
        address: address ?? null,
        ...(to ? { peer: ref(to) } : {}),
        code: p.code,
        error: p.sentence,
        ...stack(e),
      }),
    peers: (list, legacy, goneSince) =>
      send('peers', {
        connected: list.connected.map(info),
        known: list.known.map((k) => {
          const at = goneSince?.(k.id)
          return { ...k, fingerprint: fingerprint(k.id), ...(at !== undefined ? { goneSince: at } : {}) }
        }),
        ...(legacy !== undefined ? { legacy } : {}),
      }),
    legacy: (report) => {
      switch (report.kind) {
        case 'message': {
          const m = report.message
          send('legacy-message', {
            from: m.from,
            text: m.text,
            remoteAddress: m.remoteAddress,
            receivedAt: m.receivedAt,
            legacy: true,
            verified: false,
          })
          return
        }
        case 'joined':
          send('legacy-peer:joined', { peer: report.peer })
          return
        case 'left':
          send('legacy-peer:left', { peer: report.peer, reason: report.reason })
          return
        case 'dropped':
          send('legacy-dropped', { ...report.drop })
          return
        case 'sent':
          send('legacy-sent', { to: report.to, text: report.text, legacy: true, confirmed: false })
          return
        case 'announced':
          send('legacy-announced', { to: report.to, legacy: true })
          return
      }
    },
    note: (text, kind = 'note') => send(kind, { text }),
    problem: (p, e) => send('error', { code: p.code, error: p.sentence, ...stack(e) }),
    file: (report) => {
      const { type, fields } = fileJson(report)
      send(type, fields)
    },
    files: (list) => send('files', fileListJson(list)),
    stopped: (code, told) => send('stopped', { exitCode: code, peers: told }),
  }
}
