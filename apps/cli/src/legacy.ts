import { networkInterfaces } from 'node:os'
import {
  createLegacyBridge,
  LEGACY_MAX_MESSAGE_BYTES,
  LEGACY_MAX_NAME_BYTES,
  type LegacyBridge,
  legacyAwareTransport,
  type Peer,
  type Transport,
} from '@parley/core'
import type { App } from './app-context.js'
import { type Explained, explain } from './errors.js'
import type { Logger } from './logger.js'
import { checkAddress } from './options.js'
import { sanitize } from './view/format.js'
import { skeleton } from './view/names.js'
import type { Reporter } from './view/reporter.js'

/** Prefix that makes `send` treat an address as a legacy peer: `send legacy:10.0.0.2:5001 hi`. */
export const LEGACY_PREFIX = 'legacy:'

/** How long quitting waits for the `exit` strings to go out. */
const EXIT_TIMEOUT_MS = 2_000

export interface LegacySetup {
  bridge: LegacyBridge
  /** The peer's transport, decorated so its listener also accepts legacy connections. */
  transport: Transport
}

/**
 * `--legacy`: the bridge and the decorated transport the peer listens with. `peer()` returns the
 * running peer (undefined before it listens): the bridge takes our name and address from it.
 */
export function setupLegacy(
  transport: Transport,
  peer: () => Peer | undefined,
  fallbackName: string | undefined,
  handshakeTimeout: number,
): LegacySetup {
  const bridge = createLegacyBridge({
    transport,
    name: () => legacyName(peer()?.name ?? fallbackName ?? 'parley'),
    ownAddress: () => dialableAddress(peer()?.addresses[0]),
  })
  return { bridge, transport: legacyAwareTransport(transport, bridge, { sniffTimeout: handshakeTimeout }) }
}

/** A Parley name as the legacy format allows it: no whitespace or control characters, ≤ 64 bytes. */
export function legacyName(name: string): string {
  let out = name
    .replace(/[\p{Cc}\u202a-\u202e\u2066-\u2069]/gu, '')
    .trim()
    .replace(/\s+/g, '_')
  while (Buffer.byteLength(out) > LEGACY_MAX_NAME_BYTES) out = Array.from(out).slice(0, -1).join('')
  return out === '' ? 'parley' : out
}

/**
 * Our address as a legacy peer can dial it back. Bound to a wildcard (0.0.0.0, [::]), there is no
 * single answer: like the original, which binds to the machine's LAN address, use the first
 * non-loopback IPv4 address.
 */
function dialableAddress(address: string | undefined): string | undefined {
  const m = address === undefined ? null : /^(0\.0\.0\.0|\[::\]):(\d+)$/.exec(address)
  if (!m) return address
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') return `${a.address}:${m[2]}`
  }
  return `127.0.0.1:${m[2]}`
}

/** Bridge events → lines on the screen (and the log file). */
export function wireLegacy(bridge: LegacyBridge, reporter: Reporter, logger: Logger): void {
  bridge.on('message', (m) => {
    reporter.legacy({ kind: 'message', message: m })
    logger.log('info', 'legacy message', { from: m.from.address, bytes: Buffer.byteLength(m.text) })
  })
  bridge.on('peer:joined', (p) => {
    reporter.legacy({ kind: 'joined', peer: p })
    logger.log('info', 'legacy peer:joined', { address: p.address, name: p.name })
  })
  bridge.on('peer:left', (e) => {
    reporter.legacy({ kind: 'left', peer: e.peer, reason: e.reason })
    logger.log('info', 'legacy peer:left', { address: e.peer.address, reason: e.reason })
  })
  bridge.on('dropped', (d) => {
    reporter.legacy({ kind: 'dropped', drop: d })
    logger.log('warn', 'legacy dropped', { ...d })
  })
}

/** Adds a legacy peer by address (from --legacy-peer or the send menu). Never throws. */
export function addLegacyPeer(app: App, address: string): string | undefined {
  if (!app.legacy) return undefined
  try {
    return app.legacy.addPeer(address).address
  } catch (err) {
    app.reporter.problem(explainLegacy(err, { address }), err)
    return undefined
  }
}

/** What a `legacy:` target resolved to: the legacy peer's address, or why not (undefined: reported). */
export type LegacyTarget = { address: string } | { refused: Explained | undefined }

/**
 * The legacy peer `target` addresses, for a target written `legacy:<host:port>` (added to the list)
 * or `legacy:<name>`; undefined for every other target, which is a Parley peer's. Clear text goes
 * only where the user said "legacy": a bare name or address never falls back to a legacy peer, and
 * a name that is or was a Parley peer's (or looks like one) never means a legacy peer.
 */
export function legacyTarget(app: App, target: string): LegacyTarget | undefined {
  if (!target.toLowerCase().startsWith(LEGACY_PREFIX)) return undefined
  const rest = target.slice(LEGACY_PREFIX.length).trim()
  if (!app.legacy) {
    return {
      refused: {
        code: 'NOT_LEGACY',
        sentence: `${target} addresses a legacy plain-text peer — start with --legacy to talk to those`,
      },
    }
  }
  if (checkAddress(rest) === undefined) {
    const address = addLegacyPeer(app, rest)
    return address === undefined ? { refused: undefined } : { address }
  }
  const clash = parleyNameLike(app, rest)
  if (clash !== undefined) {
    return {
      refused: {
        code: 'LEGACY_NAME_TAKEN',
        sentence: `"${sanitize(rest)}" ${clash === rest ? 'is' : `looks like "${sanitize(clash)}", which is`} the name of a Parley peer known here, so no clear text goes to a legacy peer by that name — write legacy:<host:port> instead`,
      },
    }
  }
  const found = app.legacy.find(rest)
  if (found === undefined) return { refused: explainLegacy({ code: 'UNKNOWN_PEER' }, { address: rest }) }
  return { address: found.address }
}

/** The Parley peer name (connected, known, or saved with a key) that `name` is or looks like. */
function parleyNameLike(app: App, name: string): string | undefined {
  const list = app.peer.peers()
  const names = app.parleyNames?.() ?? [...list.connected, ...list.known].map((p) => p.name)
  const mine = skeleton(name)
  return names.find((n) => n === name) ?? names.find((n) => n !== '' && skeleton(n) === mine)
}

/** Sends one legacy message and reports it. Never rejects. */
export async function sendLegacy(app: App, address: string, text: string): Promise<boolean> {
  const bridge = app.legacy
  if (!bridge) return false
  const to = bridge.find(address) ?? { address, name: undefined }
  try {
    await bridge.send(address, text)
    app.reporter.legacy({ kind: 'sent', to, text })
    app.logger.log('info', 'legacy sent', { to: address, bytes: Buffer.byteLength(text) })
    return true
  } catch (err) {
    app.reporter.notDelivered(to.name ?? address, explainLegacy(err, { address, text }), undefined, err)
    app.logger.log('warn', 'legacy send failed', { to: address, err })
    return false
  }
}

/** Connect-to-active for legacy peers: `connect` to each known one, one line each. Never rejects. */
export async function connectLegacyAll(app: App): Promise<void> {
  const bridge = app.legacy
  if (!bridge) return
  const known = new Map(bridge.peers().map((p) => [p.address, p]))
  for (const outcome of await bridge.connectAll()) {
    const peer = known.get(outcome.address) ?? { address: outcome.address, name: undefined }
    if (outcome.ok) app.reporter.legacy({ kind: 'announced', to: peer })
    else
      app.reporter.notConnected(outcome.address, explainLegacy(outcome.error, { address: outcome.address }))
  }
}

/** Quit as the original does: `exit` to every known legacy peer (bounded), then close the bridge. */
export async function leaveLegacy(bridge: LegacyBridge, logger: Logger): Promise<void> {
  const outcomes = await bridge.exitAll({ timeout: EXIT_TIMEOUT_MS })
  logger.log('info', 'legacy exit', {
    peers: outcomes.length,
    sent: outcomes.filter((o) => o.ok).length,
  })
  await bridge.close()
}

/** One sentence for a LegacyError (matched on its code), falling back to the general explanations. */
export function explainLegacy(err: unknown, ctx: { address?: string; text?: string }): Explained {
  const code = (err as { code?: unknown } | null)?.code
  const at = ctx.address ?? 'the legacy peer'
  const say = (sentence: string): Explained => ({ code: String(code), sentence })
  switch (code) {
    case 'MESSAGE_TOO_LONG':
      return say(
        `the message is too long for a legacy peer — with our address and name it must fit in ${LEGACY_MAX_MESSAGE_BYTES} bytes; shorten it or send it in parts`,
      )
    case 'INVALID_TEXT':
      return say(
        ctx.text !== undefined && ctx.text !== ''
          ? `"${ctx.text}" is a command in the legacy protocol (connect, exit), not a message — reword it`
          : 'the message is empty',
      )
    case 'INVALID_ADDRESS':
      return ctx.text === undefined
        ? say(`"${at}" is not a valid address — use host:port, e.g. 127.0.0.1:5001`)
        : say('legacy peers need an address to answer to — listen on a specific --host, not a wildcard')
    case 'INVALID_NAME':
      return say('your name cannot be used in the legacy protocol — pick one without spaces with --name')
    case 'UNKNOWN_PEER':
      return say(`no legacy peer matches "${at}" — use its host:port, or legacy:<host:port>`)
    case 'UNREACHABLE':
      return explain((err as { cause?: unknown }).cause ?? err, { address: at })
    case 'TIMEOUT':
      return say(`${at} did not answer in time — check the address and any firewall`)
    case 'STOPPED':
      return say('this peer is shutting down')
    default:
      return explain(err, { address: at })
  }
}
