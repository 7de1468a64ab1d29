import {
  type DisconnectReason,
  fingerprint,
  type KnownPeer,
  type LegacyPeerInfo,
  type PeerInfo,
  type PeerList,
} from '@parley/core'
import stringWidth from 'string-width'
import { lookalikeNote } from './names.js'
import type { Style } from './style.js'

/**
 * Makes remote-controlled text safe to print on a terminal: a peer's name or message must not be
 * able to move the cursor, recolour the screen, retitle the window or reorder text (bidi controls).
 * Tabs become spaces; newlines survive only when `multiline`.
 */
export function sanitize(text: string, multiline = false): string {
  const tabless = text.replace(/\t/g, '  ').replace(/\r\n?/g, '\n')
  // C0 and C1 controls (ESC included), DEL, the line and paragraph separators, and the Unicode bidi
  // controls (marks, embeddings, overrides, isolates): the same set @parley/files keeps out of names.
  const cleaned = tabless.replace(
    /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g,
    '',
  )
  return multiline ? cleaned : cleaned.replace(/\n/g, ' ')
}

// Every escape sequence (CSI with its parameters, or ESC and the character after it) and every
// control character but the newline, plus the bidi controls and line separators sanitize() removes.
const UNSAFE =
  /\x1b\[[0-?]*[ -/]*[@-~]|\x1b[\s\S]?|[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g
// The colour codes createStyle writes: bold, dim, inverse, red, green, yellow, cyan, and their ends.
const OWN_SGR = /^\x1b\[(?:1|2|7|22|27|31|32|33|36|39)m$/

/**
 * The last gate before the terminal, for whole lines the reporter prints: keeps our own colour codes
 * and newlines, drops every other escape sequence and control character. Remote text is sanitized
 * where it is placed; this is for the one place that forgot to, so a peer's `\x1b[8m` (hide what
 * follows) or `\x1b]2;…` (retitle the window) can never reach the screen whole.
 */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, (seq) => (OWN_SGR.test(seq) ? seq : ''))
}

/** Columns a string takes on a terminal (colour codes take none, wide characters two, combining marks none). */
export function displayWidth(text: string): number {
  return stringWidth(text)
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' })

/**
 * Cuts one line (no newline in it) into rows of at most `first` columns for the first row and `rest`
 * for the others, at a space where one falls in the row's second half, else between characters.
 */
export function wrapLine(line: string, first: number, rest: number): string[] {
  if (stringWidth(line) <= first) return [line]
  const rows: string[] = []
  let row = ''
  let used = 0
  let limit = first
  let space = -1
  for (const { segment } of graphemes.segment(line)) {
    const w = stringWidth(segment)
    if (used + w > limit && row !== '') {
      if (space > 0 && space * 2 >= row.length) {
        rows.push(row.slice(0, space).trimEnd())
        row = row.slice(space + 1)
      } else {
        rows.push(row)
        row = ''
      }
      used = stringWidth(row)
      limit = rest
      space = -1
    }
    if (segment === ' ') space = row.length
    row += segment
    used += w
  }
  rows.push(row)
  return rows
}

/**
 * `head` and then a message body, wrapped to a terminal of `columns`: every row after the first starts
 * indented (under the body's first character where there is room), so no text of the body can begin
 * a row at the left edge, where it could pass for a line of its own (`12:00:01 bob: …`).
 */
export function wrapBlock(head: string, body: string, columns: number): string {
  const width = Math.max(20, columns - 1)
  const headWidth = stringWidth(head)
  const indent = Math.max(2, Math.min(headWidth, width - 20))
  const pad = ' '.repeat(indent)
  const rows: string[] = []
  const lines = body.split('\n')
  const firstRoom = width - headWidth
  lines.forEach((line, i) => {
    if (i === 0 && firstRoom >= 10) {
      const [start = '', ...more] = wrapLine(line, firstRoom, width - indent)
      rows.push(head + start, ...more.map((r) => pad + r))
      return
    }
    if (i === 0) rows.push(head.trimEnd())
    for (const r of wrapLine(line, width - indent, width - indent)) rows.push(r === '' ? '' : pad + r)
  })
  return rows.join('\n')
}

/** `HH:MM:SS` in local time. */
export function clock(at: number | Date = Date.now()): string {
  const d = typeof at === 'number' ? new Date(at) : at
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':')
}

/** A short "how long ago": `now`, `12s ago`, `4m ago`, `3h ago`, `2d ago`. */
export function ago(at: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - at) / 1000))
  if (s < 2) return 'now'
  if (s < 60) return `${s}s ago`
  if (s < 3600) return `${Math.floor(s / 60)}m ago`
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`
  return `${Math.floor(s / 86_400)}d ago`
}

/** `alice (ab12:cd34)`, coloured when the style is. */
export function who(style: Style, peer: { id: string; name: string }, others: Iterable<string> = []): string {
  const note = lookalikeNote(peer.name, others)
  const mark = note === undefined ? '' : ` ${style('yellow', note)}`
  return `${style('bold', sanitize(peer.name))}${mark} ${style('dim', `(${fingerprint(peer.id)})`)}`
}

/** A name for a table cell: with its look-alike marker when it looks like another name in the table. */
function nameCell(name: string, all: readonly string[]): string {
  const note = lookalikeNote(name, all)
  return note === undefined ? sanitize(name) : `${sanitize(name)} ${note}`
}

/**
 * Where a connected peer is: the address we dialed it at; for a peer that dialed in, the address its
 * connection comes from, and the one it says it listens on as what it is, a claim (anyone may claim a
 * saved peer's address; only a dial checks it).
 */
export function reachableAt(p: Pick<PeerInfo, 'address' | 'listenAddrs' | 'direction'>): string {
  if (p.direction === 'outbound') return p.address
  const claim = p.listenAddrs[0]
  return claim === undefined || claim === p.address ? p.address : `${p.address}, says it listens at ${claim}`
}

/** Human words for why a peer left. */
export function leftBecause(reason: DisconnectReason, message: string): string {
  const detail = sanitize(message)
  switch (reason) {
    case 'goodbye':
      return detail ? `said goodbye (${detail})` : 'said goodbye'
    case 'connection-lost':
      return detail ? `connection lost (${detail})` : 'connection lost'
    case 'timeout':
      return detail ? `stopped answering (${detail})` : 'stopped answering'
    case 'protocol-error':
      return detail ? `broke the protocol (${detail})` : 'broke the protocol'
    case 'local':
      return detail ? `disconnected here (${detail})` : 'disconnected here'
  }
}

/** Printed width of a string that may hold SGR colour codes. */
export function visibleLength(s: string): number {
  return s.replace(/\x1b\[[0-9;]*m/g, '').length
}

/**
 * Formats rows as aligned columns. Widths count characters after removing escape codes, which is
 * right for the ASCII-ish content here (names are sanitized; wide CJK names may misalign slightly).
 * Given the terminal's `columns`, the columns named in `drop` go, in that order, until the table fits
 * (a row wrapped by the terminal no longer reads as a row).
 */
export function table(
  header: string[],
  rows: string[][],
  style: Style,
  fit?: { columns: number | undefined; drop: readonly string[] },
): string {
  const visible = visibleLength
  let keep = header.map((_, i) => i)
  const widthOf = (cols: number[]) =>
    2 +
    cols.reduce((sum, i) => sum + Math.max(visible(header[i]!), ...rows.map((r) => visible(r[i] ?? ''))), 0) +
    2 * (cols.length - 1)
  for (const name of fit?.columns ? fit.drop : []) {
    if (widthOf(keep) < fit!.columns!) break
    keep = keep.filter((i) => header[i] !== name)
  }
  const pick = (cells: string[]) => keep.map((i) => cells[i] ?? '')
  const shown = rows.map(pick)
  const head = pick(header)
  const widths = head.map((h, i) => Math.max(h.length, ...shown.map((r) => visible(r[i] ?? ''))))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - visible(c))))
      .join('  ')
      .trimEnd()
  return [style('dim', line(head)), ...shown.map(line)].map((l) => `  ${l}`).join('\n')
}

/** The peers table of menu item 2 and the `peers` command: connected first, then known-only. */
export function peersTable(
  list: PeerList,
  style: Style,
  now = Date.now(),
  goneSince?: (id: string) => number | undefined,
  columns?: number,
): string {
  const out: string[] = []
  const names = [...list.connected.map((p) => p.name), ...list.known.map((k) => k.name)]
  const gone = (k: KnownPeer) => {
    const at = goneSince?.(k.id)
    return at === undefined ? undefined : style('dim', `gone ${ago(at, now)}`)
  }
  if (list.connected.length === 0) {
    out.push('no peers connected')
  } else {
    out.push(style('bold', `connected peers (${list.connected.length})`))
    out.push(
      table(
        ['name', 'fingerprint', 'address', 'direction', 'connected since', 'last seen', 'in', 'out'],
        list.connected.map((p: PeerInfo) => [
          nameCell(p.name, names),
          fingerprint(p.id),
          sanitize(reachableAt(p)),
          p.direction,
          clock(p.connectedAt),
          ago(p.lastSeen, now),
          String(p.messagesIn),
          String(p.messagesOut),
        ]),
        style,
        { columns, drop: ['connected since', 'in', 'out', 'direction'] },
      ),
    )
  }
  if (list.known.length > 0) {
    out.push(style('bold', `known, not connected (${list.known.length})`))
    out.push(
      table(
        ['name', 'fingerprint', 'addresses', 'last seen'],
        list.known.map((k: KnownPeer) => [
          nameCell(k.name, names),
          fingerprint(k.id),
          addressList(k.addrs, columns),
          gone(k) ?? (k.lastSeen > 0 ? ago(k.lastSeen, now) : 'never'),
        ]),
        style,
        { columns, drop: ['last seen'] },
      ),
    )
  }
  return out.join('\n')
}

/** On a terminal, a peer's first two addresses and how many more: one row per peer. */
function addressList(addrs: readonly string[], columns: number | undefined): string {
  if (addrs.length === 0) return '(none)'
  const shown = columns && addrs.length > 2 ? addrs.slice(0, 2) : addrs
  const more = addrs.length - shown.length
  return shown.map((a) => sanitize(a)).join(', ') + (more > 0 ? `, +${more} more` : '')
}

/** The marker every legacy peer and message carries on screen. */
export const LEGACY_MARK = '[legacy, unverified]'

/** The legacy peers table of menu item 2 and `peers` (with `--legacy`). */
export function legacyPeersTable(list: readonly LegacyPeerInfo[], style: Style, now = Date.now()): string {
  if (list.length === 0) return 'no legacy peers known'
  return [
    style('bold', `legacy peers (${list.length}) ${LEGACY_MARK}: plain text, anyone can claim these names`),
    table(
      ['name', 'address', 'last seen', 'protocol'],
      list.map((p) => [
        p.name === undefined ? '(not heard from)' : sanitize(p.name),
        sanitize(p.address),
        p.lastSeen === undefined ? 'never' : ago(p.lastSeen, now),
        'legacy',
      ]),
      style,
    ),
  ].join('\n')
}

/** Indents the lines after the first so a multi-line message reads as one block. */
export function block(text: string, indent: number): string {
  return text.split('\n').join(`\n${' '.repeat(indent)}`)
}
