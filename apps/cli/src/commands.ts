import { createInterface } from 'node:readline'
import { broadcastMessage, connectTo, connectToAll, sendMessage, showPeers } from './actions.js'
import type { App } from './app-context.js'
import { acceptKey, showKeyChanges } from './trust.js'

/** One line of non-interactive input, parsed. */
export type LineCommand =
  | { name: 'send'; target: string; text: string }
  | { name: 'broadcast'; text: string }
  | { name: 'peers' }
  | { name: 'connect'; address: string }
  | { name: 'connect-all' }
  | { name: 'trust'; address: string | undefined; full: boolean }
  | { name: 'send-file'; target: string; path: string }
  | { name: 'accept'; id: string | undefined }
  | { name: 'decline'; id: string | undefined }
  | { name: 'cancel'; id: string }
  | { name: 'files' }
  | { name: 'quit' }
  | { name: 'help' }

export const COMMAND_SUMMARY =
  'commands: send <peer> <text>, broadcast <text>, peers, connect <host:port>, connect-all, trust [--full | <address>], send-file <peer> <path>, accept [id], decline [id], cancel <id>, files, quit'

/**
 * Parses one input line. Returns undefined for blank lines and `#` comments, or `{ error }` with a
 * sentence saying what is wrong. In <text>, `\n` is a line break and `\\` a backslash.
 */
export function parseLine(line: string): LineCommand | { error: string } | undefined {
  const trimmed = line.trim()
  if (trimmed === '' || trimmed.startsWith('#')) return undefined
  const m = /^(\S+)\s*(.*)$/s.exec(trimmed)
  const verb = (m?.[1] ?? '').toLowerCase()
  const rest = m?.[2] ?? ''
  switch (verb) {
    case 'send': {
      const target = firstWord(rest)
      if (!target || target.rest.trim() === '') return { error: 'usage: send <peer> <text>' }
      return { name: 'send', target: target.word, text: decodeEscapes(target.rest.trim()) }
    }
    case 'broadcast':
      if (rest.trim() === '') return { error: 'usage: broadcast <text>' }
      return { name: 'broadcast', text: decodeEscapes(rest.trim()) }
    case 'peers':
      return { name: 'peers' }
    case 'connect':
      if (rest.trim() === '' || /\s/.test(rest.trim())) return { error: 'usage: connect <host:port>' }
      return { name: 'connect', address: rest.trim() }
    case 'connect-all':
      return { name: 'connect-all' }
    case 'trust': {
      const arg = rest.trim()
      if (arg === '' || arg === '--full') return { name: 'trust', address: undefined, full: arg !== '' }
      if (/\s/.test(arg)) return { error: 'usage: trust [--full] or trust <address>' }
      return { name: 'trust', address: arg, full: false }
    }
    case 'send-file': {
      const target = firstWord(rest)
      if (!target || target.rest.trim() === '') return { error: 'usage: send-file <peer> <path>' }
      return { name: 'send-file', target: target.word, path: unquote(target.rest.trim()) }
    }
    case 'accept':
    case 'decline': {
      const id = rest.trim()
      if (/\s/.test(id)) return { error: `usage: ${verb} [id]` }
      return { name: verb as 'accept' | 'decline', id: id === '' ? undefined : id }
    }
    case 'cancel': {
      const id = rest.trim()
      if (id === '' || /\s/.test(id)) return { error: 'usage: cancel <id>' }
      return { name: 'cancel', id }
    }
    case 'files':
      return { name: 'files' }
    case 'quit':
    case 'exit':
      return { name: 'quit' }
    case 'help':
      return { name: 'help' }
    default:
      return { error: `unknown command "${verb}" — ${COMMAND_SUMMARY}` }
  }
}

/** The first word of `s`, or a double-quoted phrase (`"bob smith"`). */
function firstWord(s: string): { word: string; rest: string } | undefined {
  if (s.startsWith('"')) {
    const end = s.indexOf('"', 1)
    if (end < 0) return undefined
    return { word: s.slice(1, end), rest: s.slice(end + 1) }
  }
  const m = /^(\S+)(.*)$/s.exec(s)
  return m ? { word: m[1]!, rest: m[2]! } : undefined
}

/** A path may be written in double quotes (`"my photo.jpg"`). */
export function unquote(s: string): string {
  return s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s
}

function decodeEscapes(text: string): string {
  return text.replace(/\\(\\|n)/g, (_all, c: string) => (c === 'n' ? '\n' : '\\'))
}

/** Runs one parsed command to completion. Never rejects: failures are reported. */
export async function runCommand(app: App, cmd: LineCommand): Promise<void> {
  switch (cmd.name) {
    case 'send':
      await sendMessage(app, cmd.target, cmd.text)
      return
    case 'broadcast':
      await broadcastMessage(app, cmd.text)
      return
    case 'peers':
      await showPeers(app, true)
      return
    case 'connect':
      await connectTo(app, cmd.address)
      return
    case 'connect-all':
      await connectToAll(app)
      return
    case 'trust':
      if (cmd.address === undefined) showKeyChanges(app, cmd.full)
      else await acceptKey(app, cmd.address)
      return
    case 'send-file':
      await app.files?.sendFile(app.peer, cmd.target, cmd.path)
      return
    case 'accept':
      await app.files?.accept(cmd.id)
      return
    case 'decline':
      app.files?.decline(cmd.id)
      return
    case 'cancel':
      app.files?.cancel(cmd.id)
      return
    case 'files':
      app.files?.list()
      return
    case 'quit':
      await app.shutdown(0)
      return
    case 'help':
      app.reporter.note(COMMAND_SUMMARY, 'help')
      return
  }
}

/**
 * Reads commands line by line and runs them one after another (in order, so a script's `quit`
 * comes after its `send`s). At end of input the peer keeps running until a signal: that lets
 * `parley --no-interactive < /dev/null` serve as a daemon. Resolves when shutdown starts.
 */
export async function runLineCommands(app: App, input: NodeJS.ReadableStream): Promise<void> {
  const rl = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY, terminal: false })
  const stop = () => rl.close()
  app.signal.addEventListener('abort', stop, { once: true })
  try {
    for await (const line of rl) {
      if (app.signal.aborted) break
      const cmd = parseLine(line)
      if (cmd === undefined) continue
      if ('error' in cmd) {
        app.reporter.problem({ code: 'USAGE', sentence: cmd.error })
        continue
      }
      app.logger.log('debug', 'command', { command: cmd.name })
      await runCommand(app, cmd)
    }
  } finally {
    app.signal.removeEventListener('abort', stop)
    rl.close()
  }
  // End of input: wait for a signal (or a quit already in progress).
  if (!app.signal.aborted) {
    await new Promise<void>((resolve) =>
      app.signal.addEventListener('abort', () => resolve(), { once: true }),
    )
  }
}
