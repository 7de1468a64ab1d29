/** What the CLI says about file transfers: the reports, and their text and NDJSON forms. */
import { fingerprint } from '@parley/core'
import { clock, sanitize } from '../view/format.js'
import type { Style } from '../view/style.js'

/** Who a file line is about. */
export interface FilePeer {
  id: string
  name: string
}

/** `in`: we receive (a download); `out`: we send (an upload). */
export type Direction = 'in' | 'out'

/**
 * One thing that happened to a transfer. `id` is the short id users type (`/accept 1a2b3c4d`): the
 * first 8 hex digits of the root hash, the content's address.
 */
export type FileReport =
  | {
      kind: 'offer'
      id: string
      root: string
      /** The name it will be saved under (sanitized). */
      name: string
      /** The name as offered: remote text, shown sanitized. */
      offeredName: string
      size: number
      from: FilePeer
      expiresInSeconds: number
    }
  | { kind: 'offered'; id: string; root: string; name: string; size: number; to: FilePeer }
  | { kind: 'accepted'; id: string; name: string; to: FilePeer }
  | { kind: 'started'; id: string; root: string; name: string; size: number; resumed: number; auto: boolean }
  | {
      kind: 'progress'
      direction: Direction
      id: string
      name: string
      bytes: number
      size: number
      rate: number
      secondsLeft: number | undefined
    }
  | {
      kind: 'done'
      id: string
      root: string
      name: string
      size: number
      path: string
      /** Bytes already verified on disk when this run of the download started (a resume). */
      resumed: number
      /** The name wanted when the file was saved under another one (it existed). */
      wanted: string | undefined
    }
  | { kind: 'sent'; id: string; root: string; name: string; size: number; to: FilePeer }
  | { kind: 'failed'; direction: Direction; id: string; name: string; code: string; reason: string }
  /** Our own offer, still unanswered, withdrawn because we quit. */
  | { kind: 'unoffered'; id: string; name: string; to: FilePeer }
  /** A download stopped because we quit: `resumable` with a data dir (its state was saved). */
  | { kind: 'paused'; id: string; name: string; bytes: number; size: number; resumable: boolean }
  /** `left`: its sender said goodbye, so the offer was dropped. */
  | { kind: 'closed'; id: string; name: string; how: 'declined' | 'expired' | 'withdrawn' | 'left' }

/** `3.1 MB`, `512 B`: decimal units, as file managers show sizes. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`
  const units = ['kB', 'MB', 'GB', 'TB']
  let v = n / 1000
  let i = 0
  for (;;) {
    // Decided on the rounded value: 999,999 B is "1.0 MB", not "1000 kB"; 99,960 B is "100 kB".
    const text = v.toFixed(v >= 99.95 ? 0 : 1)
    if (Number(text) < 1000 || i === units.length - 1) return `${text} ${units[i]}`
    v /= 1000
    i++
  }
}

/** `0:07`, `1:02:03`; `?` while unknown. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '?'
  const s = Math.max(0, Math.round(seconds))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const ss = String(s % 60).padStart(2, '0')
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`
}

/** `↓ photo.jpg 43% 12.3 MB/s 0:07 left`: one transfer on the status line or a progress line. */
export function progressText(r: Extract<FileReport, { kind: 'progress' }>, stalled = false): string {
  const pct = r.size === 0 ? 100 : Math.floor((r.bytes / r.size) * 100)
  const arrow = r.direction === 'in' ? '↓' : '↑'
  if (stalled)
    return `${arrow} ${sanitize(r.name)} ${pct}% waiting for the ${r.direction === 'in' ? 'sender' : 'receiver'}`
  return `${arrow} ${sanitize(r.name)} ${pct}% ${formatBytes(Math.round(r.rate))}/s ${formatDuration(r.secondsLeft)} left`
}

export interface FileTextInit {
  style: Style
  /** How a peer is named on screen. */
  who: (p: FilePeer) => string
  /** Commands are typed with a leading `/` (chat view) or without (line mode). */
  slash: boolean
  /** The numbered menu is what the user types in: it answers offers (item 8), not commands. */
  menu?: boolean
  now?: () => number
}

/**
 * The text line for a report, or undefined when it prints nothing (progress: shown on the status
 * line in the chat view, as milestones elsewhere — the caller decides).
 */
export function fileLine(r: FileReport, init: FileTextInit): { text: string; bad?: boolean } | undefined {
  const { style } = init
  const cmd = (c: string) => style('bold', `${init.slash ? '/' : ''}${c}`)
  const stamp = style('dim', clock((init.now ?? Date.now)()))
  const line = (text: string, bad = false) => ({ text: `${stamp} ${text}`, bad })
  const name = (n: string) => style('bold', sanitize(n))
  switch (r.kind) {
    case 'offer': {
      const renamed =
        sanitize(r.offeredName) !== r.name ? style('dim', ` (offered as "${sanitize(r.offeredName)}")`) : ''
      const answer = init.menu
        ? `menu ${style('bold', '8')} (Files) accepts or declines it`
        : `${cmd(`accept ${r.id}`)} or ${cmd(`decline ${r.id}`)}`
      return line(
        `${style('cyan', '⇣')} ${init.who(r.from)} offers ${name(r.name)}${renamed} (${formatBytes(r.size)}) — ${answer} (expires in ${r.expiresInSeconds} s)`,
      )
    }
    case 'offered':
      return line(
        `offered ${name(r.name)} (${formatBytes(r.size)}) to ${init.who(r.to)} — waiting for an answer (${r.id})`,
      )
    case 'accepted':
      return line(`${init.who(r.to)} accepted ${name(r.name)}; sending`)
    case 'started':
      return line(
        r.resumed > 0
          ? `resuming ${name(r.name)} at ${formatBytes(r.resumed)} of ${formatBytes(r.size)} (${r.id})`
          : `receiving ${name(r.name)} (${formatBytes(r.size)})${r.auto ? ', accepted by --accept-files' : ''} (${r.id})`,
      )
    case 'progress':
      return line(style('dim', progressText(r)))
    case 'done': {
      const also =
        r.wanted !== undefined
          ? ` — ${sanitize(r.wanted)} already existed, so it was saved under a new name`
          : ''
      return line(
        `${style('green', '✔')} saved ${name(r.name)} (${formatBytes(r.size)}, verified) at ${sanitize(r.path)}${also}`,
      )
    }
    case 'sent':
      return line(
        `${style('green', '✔')} ${init.who(r.to)} received ${name(r.name)} (${formatBytes(r.size)}, verified)`,
      )
    case 'failed':
      return line(
        `${style('red', '✖')} ${r.direction === 'in' ? 'receiving' : 'sending'} ${name(r.name)} failed: ${r.reason}`,
        true,
      )
    case 'unoffered':
      return line(
        `the offer of ${name(r.name)} (${r.id}) to ${init.who(r.to)} was withdrawn: you quit before it was answered`,
      )
    case 'paused': {
      const at = r.size === 0 ? 0 : Math.floor((r.bytes / r.size) * 100)
      return line(
        `receiving ${name(r.name)} stopped at ${at}% as you quit — ${r.resumable ? 'it resumes when you start again with the same --data-dir' : 'it cannot resume: there is no --data-dir'}`,
      )
    }
    case 'closed': {
      const how = {
        declined: 'declined',
        expired: 'expired unanswered',
        withdrawn: 'withdrawn by the sender',
        left: 'dropped: its sender left',
      }
      return line(`the offer of ${name(r.name)} (${r.id}) was ${how[r.how]}`)
    }
  }
}

/** The NDJSON object for a report: `type` is `file:<kind>`. */
export function fileJson(r: FileReport): { type: string; fields: Record<string, unknown> } {
  const ref = (p: FilePeer) => ({ id: p.id, name: p.name, fingerprint: fingerprint(p.id) })
  switch (r.kind) {
    case 'offer':
      return {
        type: 'file:offer',
        fields: {
          id: r.id,
          root: r.root,
          name: r.name,
          offeredName: r.offeredName,
          size: r.size,
          from: ref(r.from),
          expiresIn: r.expiresInSeconds,
        },
      }
    case 'offered':
      return {
        type: 'file:offered',
        fields: { id: r.id, root: r.root, name: r.name, size: r.size, to: ref(r.to) },
      }
    case 'accepted':
      return { type: 'file:accepted', fields: { id: r.id, name: r.name, to: ref(r.to) } }
    case 'started':
      return {
        type: 'file:started',
        fields: { id: r.id, root: r.root, name: r.name, size: r.size, resumed: r.resumed, auto: r.auto },
      }
    case 'progress':
      return {
        type: 'file:progress',
        fields: {
          id: r.id,
          direction: r.direction,
          name: r.name,
          bytes: r.bytes,
          size: r.size,
          rate: Math.round(r.rate),
          ...(r.secondsLeft !== undefined ? { secondsLeft: Math.round(r.secondsLeft) } : {}),
        },
      }
    case 'done':
      return {
        type: 'file:done',
        fields: {
          id: r.id,
          root: r.root,
          name: r.name,
          size: r.size,
          path: r.path,
          resumed: r.resumed,
          ...(r.wanted !== undefined ? { wanted: r.wanted } : {}),
        },
      }
    case 'sent':
      return {
        type: 'file:sent',
        fields: { id: r.id, root: r.root, name: r.name, size: r.size, to: ref(r.to) },
      }
    case 'failed':
      return {
        type: 'file:failed',
        fields: { id: r.id, direction: r.direction, name: r.name, code: r.code, reason: r.reason },
      }
    case 'unoffered':
      return { type: 'file:withdrawn', fields: { id: r.id, name: r.name, to: ref(r.to) } }
    case 'paused':
      return {
        type: 'file:paused',
        fields: { id: r.id, name: r.name, bytes: r.bytes, size: r.size, resumable: r.resumable },
      }
    case 'closed':
      // A sender that left withdrew its offer, as far as a script is concerned.
      return r.how === 'left'
        ? { type: 'file:withdrawn', fields: { id: r.id, name: r.name, senderLeft: true } }
        : { type: `file:${r.how}`, fields: { id: r.id, name: r.name } }
  }
}

/** What `/files` lists. */
export interface FileListing {
  offers: Array<{
    id: string
    /** The whole root hash: what the menu answers with, so a look-alike id cannot block it. */
    root: string
    name: string
    size: number
    from: FilePeer
    expiresInSeconds: number
  }>
  downloads: Array<{ id: string; name: string; size: number; bytes: number; sources: number }>
  uploads: Array<{ id: string; name: string; size: number; to: FilePeer; status: string }>
}

/** The `/files` table as text. */
export function fileListText(list: FileListing, init: FileTextInit): string {
  const { style } = init
  const rows: string[] = []
  const pct = (bytes: number, size: number) => (size === 0 ? 100 : Math.floor((bytes / size) * 100))
  rows.push(style('bold', `offers waiting (${list.offers.length})`))
  for (const o of list.offers) {
    rows.push(
      `  ${o.id}  ${sanitize(o.name)}  ${formatBytes(o.size)}  from ${init.who(o.from)}  expires in ${o.expiresInSeconds} s`,
    )
  }
  rows.push(style('bold', `receiving (${list.downloads.length})`))
  for (const d of list.downloads) {
    rows.push(
      `  ${d.id}  ${sanitize(d.name)}  ${pct(d.bytes, d.size)}% of ${formatBytes(d.size)}  ${d.sources} source${d.sources === 1 ? '' : 's'}`,
    )
  }
  rows.push(style('bold', `sending (${list.uploads.length})`))
  for (const u of list.uploads) {
    rows.push(`  ${u.id}  ${sanitize(u.name)}  ${formatBytes(u.size)}  to ${init.who(u.to)}  ${u.status}`)
  }
  if (list.offers.length + list.downloads.length + list.uploads.length === 0) {
    // Not "nothing yet": finished transfers leave this list, and the user may have had several.
    rows.push(
      style(
        'dim',
        `  no offers or transfers open — ${init.slash ? '/' : ''}send-file <peer> <path> offers a file`,
      ),
    )
  }
  return rows.join('\n')
}

/** The `/files` listing as NDJSON fields. */
export function fileListJson(list: FileListing): Record<string, unknown> {
  const ref = (p: FilePeer) => ({ id: p.id, name: p.name, fingerprint: fingerprint(p.id) })
  return {
    offers: list.offers.map((o) => ({ ...o, from: ref(o.from) })),
    downloads: list.downloads,
    uploads: list.uploads.map((u) => ({ ...u, to: ref(u.to) })),
  }
}
