import { input, rawlist } from '@inquirer/prompts'
import { fingerprint } from '@parley/core'
import { broadcastMessage, connectTo, connectToAll, sendMessage, showPeers } from '../actions.js'
import type { App } from '../app-context.js'
import { addLegacyPeer, sendLegacy } from '../legacy.js'
import { checkAddress } from '../options.js'
import { acceptKey, showKeyChanges } from '../trust.js'
import { LEGACY_MARK, reachableAt, sanitize } from '../view/format.js'
import { type Asker, PromptClosed } from './ask.js'
import { askText } from './text.js'

type Action =
  | 'send'
  | 'peers'
  | 'connect-all'
  | 'broadcast'
  | 'connect'
  | 'trust'
  | 'send-file'
  | 'files'
  | 'quit'
  | 'chat'

/** The menu. The numbering of 1–3 and 0 is the original program's; `0` needs rawlist (select is 1-based). */
export const MENU: ReadonlyArray<{ key: string; name: string; value: Action }> = [
  { key: '1', name: 'Send message', value: 'send' },
  { key: '2', name: 'Query connected peers', value: 'peers' },
  { key: '3', name: 'Connect to active peers', value: 'connect-all' },
  { key: '4', name: 'Broadcast', value: 'broadcast' },
  { key: '5', name: 'Connect to an address', value: 'connect' },
  { key: '6', name: 'Key changes (trust)', value: 'trust' },
  { key: '7', name: 'Send a file', value: 'send-file' },
  { key: '8', name: 'Files: offers (accept, decline) and transfers (cancel)', value: 'files' },
  { key: '0', name: 'Quit', value: 'quit' },
]

const TYPE_ADDRESS = '\u0000address'
const TYPE_LEGACY = '\u0000legacy'
const BACK = '\u0000back'
/** Choice values of legacy peers: their address behind this prefix (Parley peers are ids). */
const LEGACY_CHOICE = '\u0000legacy:'

/** Whom menu 1 sends to: a Parley peer (by id) or a legacy peer (by address). */
type Target = { kind: 'parley'; id: string } | { kind: 'legacy'; address: string }

/**
 * Runs the menu until Quit, Ctrl+C or shutdown. Each action reports through the app's reporter,
 * which prints above the next prompt; sends run in the background so the menu comes straight back
 * and the delivery line appears when the peer acknowledges.
 */
export async function runMenu(
  app: App,
  ask: Asker,
  options: { backToChat?: boolean } = {},
): Promise<'chat' | undefined> {
  const choices = [
    ...MENU.slice(0, -1),
    // Always listed: rawlist takes a number that is no key as a position, and 9 was the 9th entry, Quit.
    { key: '9', name: options.backToChat ? 'Back to the chat view' : 'Chat view', value: 'chat' as const },
    ...MENU.slice(-1),
  ]
  while (!app.signal.aborted) {
    try {
      const action = await ask((ctx) =>
        rawlist<Action>(
          {
            // No live counts here: the message is drawn once and would go stale while the menu waits.
            message: `${sanitize(app.peer.name)} — choose`,
            choices: choices.map((m) => ({ key: m.key, name: m.name, value: m.value })),
          },
          ctx,
        ),
      )
      if (action === 'chat') return 'chat'
      await perform(app, ask, action)
    } catch (err) {
      if (err instanceof PromptClosed) return undefined
      throw err
    }
  }
  return undefined
}

async function perform(app: App, ask: Asker, action: Action): Promise<void> {
  switch (action) {
    case 'send': {
      const target = await pickTarget(app, ask)
      if (target === undefined) return
      const text = await askText(ask, 'Message')
      if (text === undefined) return
      if (target.kind === 'legacy') void sendLegacy(app, target.address, text)
      else void sendMessage(app, target.id, text)
      return
    }
    case 'peers':
      await showPeers(app, true)
      return
    case 'connect-all':
      await connectToAll(app)
      return
    case 'broadcast': {
      if (app.peer.peers().connected.length === 0) {
        app.reporter.note('no connected peers to broadcast to — connect to one first')
        return
      }
      const text = await askText(ask, 'Broadcast')
      if (text === undefined) return
      void broadcastMessage(app, text)
      return
    }
    case 'connect': {
      const address = await askAddress(ask)
      if (address !== undefined) await connectTo(app, address)
      return
    }
    case 'trust':
      await trustMenu(app, ask)
      return
    case 'send-file':
      await sendFileMenu(app, ask)
      return
    case 'files':
      await filesMenu(app, ask)
      return
    case 'quit':
      await app.shutdown(0)
      return
    case 'chat':
      return
  }
}

/**
 * A connected peer (or, with --legacy, a legacy peer); undefined to go back. A typed address is
 * dialed before the message is asked for, so an unreachable peer costs one sentence, not a
 * typed-out message. A typed legacy address is only added: legacy peers never answer a handshake.
 */
async function pickTarget(app: App, ask: Asker): Promise<Target | undefined> {
  const connected = app.peer.peers().connected
  const legacy = app.legacy?.peers() ?? []
  let choice: string
  if (connected.length === 0 && !app.legacy) {
    app.reporter.note('no peers connected yet — type the address of one')
    choice = TYPE_ADDRESS
  } else {
    choice = await ask((ctx) =>
      rawlist<string>(
        {
          message: 'Send to',
          choices: [
            ...connected.map((p, i) => ({
              key: String(i + 1),
              name: `${sanitize(p.name)} (${fingerprint(p.id)}) ${sanitize(reachableAt(p))}`,
              value: p.id,
            })),
            ...legacy.map((p, i) => ({
              key: String(connected.length + i + 1),
              name: `${p.name === undefined ? '' : `${sanitize(p.name)} `}${LEGACY_MARK} ${sanitize(p.address)}`,
              value: `${LEGACY_CHOICE}${p.address}`,
            })),
            { key: 'a', name: 'Type an address (host:port)', value: TYPE_ADDRESS },
            ...(app.legacy
              ? [{ key: 'l', name: 'Type a legacy peer address (host:port)', value: TYPE_LEGACY }]
              : []),
            { key: '0', name: 'Back', value: BACK },
          ],
        },
        ctx,
      ),
    )
  }
  if (choice === BACK) return undefined
  if (choice.startsWith(LEGACY_CHOICE)) return { kind: 'legacy', address: choice.slice(LEGACY_CHOICE.length) }
  if (choice === TYPE_LEGACY) {
    const address = await askAddress(ask)
    if (address === undefined) return undefined
    const added = addLegacyPeer(app, address)
    return added === undefined ? undefined : { kind: 'legacy', address: added }
  }
  if (choice !== TYPE_ADDRESS) return { kind: 'parley', id: choice }
  const address = await askAddress(ask)
  if (address === undefined) return undefined
  const info = await connectTo(app, address)
  return info ? { kind: 'parley', id: info.id } : undefined
}

/** Lists the pending key changes (whole keys), then offers to accept one of them. */
async function trustMenu(app: App, ask: Asker): Promise<void> {
  showKeyChanges(app, true)
  const changes = app.peer.keyChanges()
  if (changes.length === 0) return
  const choice = await ask((ctx) =>
    rawlist<string>(
      {
        message: 'Accept the new key of',
        choices: [
          ...changes.map((c, i) => ({
            key: String(i + 1),
            name: `${sanitize(c.address)}${c.name === '' ? '' : ` (${sanitize(c.name)})`}: new key ${fingerprint(c.actual)}`,
            value: c.address,
          })),
          { key: '0', name: 'None (back)', value: BACK },
        ],
      },
      ctx,
    ),
  )
  if (choice !== BACK) await acceptKey(app, choice)
}

/** Picks a connected peer and a path, and offers the file. */
async function sendFileMenu(app: App, ask: Asker): Promise<void> {
  const connected = app.peer.peers().connected
  if (connected.length === 0 || !app.files) {
    app.reporter.note('no peers connected to send a file to — connect to one first')
    return
  }
  const to = await ask((ctx) =>
    rawlist<string>(
      {
        message: 'Send the file to',
        choices: [
          ...connected.map((p, i) => ({
            key: String(i + 1),
            name: `${sanitize(p.name)} (${fingerprint(p.id)})`,
            value: p.id,
          })),
          { key: '0', name: 'Back', value: BACK },
        ],
      },
      ctx,
    ),
  )
  if (to === BACK) return
  const path = await ask((ctx) => input({ message: 'Path of the file (empty to go back)' }, ctx))
  if (path.trim() === '') return
  void app.files.sendFile(app.peer, to, path.trim())
}

/** Lists offers and transfers, then offers to accept or decline a waiting offer, or stop a transfer. */
async function filesMenu(app: App, ask: Asker): Promise<void> {
  const files = app.files
  if (!files) return
  files.list()
  const { offers, downloads, uploads } = files.listing()
  // One entry per file: cancelling stops every transfer of it (an upload to several peers included).
  const running = new Map<string, string>()
  for (const t of [...downloads, ...uploads]) running.set(t.id, sanitize(t.name))
  if (offers.length === 0 && running.size === 0) return
  const choice = await ask((ctx) =>
    rawlist<string>(
      {
        message: offers.length > 0 ? 'Answer an offer' : 'Stop a transfer',
        choices: [
          ...offers.flatMap((o, i) => {
            // By the whole root, and its number when offers share the root (they claim different sizes).
            const answer = `${o.root}${/-\d+$/.exec(o.id)?.[0] ?? ''}`
            return [
              { key: `${i + 1}`, name: `Accept ${sanitize(o.name)} (${o.id})`, value: `a${answer}` },
              { key: `d${i + 1}`, name: `Decline ${sanitize(o.name)} (${o.id})`, value: `d${answer}` },
            ]
          }),
          ...[...running].map(([id, name], i) => ({
            key: `c${i + 1}`,
            name: `Cancel ${name} (${id})`,
            value: `c${id}`,
          })),
          { key: '0', name: 'Back', value: BACK },
        ],
      },
      ctx,
    ),
  )
  if (choice === BACK) return
  if (choice.startsWith('a')) await files.accept(choice.slice(1))
  else if (choice.startsWith('c')) files.cancel(choice.slice(1))
  else files.decline(choice.slice(1))
}

/** A validated host:port; an empty answer goes back. */
async function askAddress(ask: Asker): Promise<string | undefined> {
  const address = await ask((ctx) =>
    input(
      {
        message: 'Address (host:port, empty to go back)',
        validate: (value: string) => value.trim() === '' || (checkAddress(value) ?? true),
      },
      ctx,
    ),
  )
  return address.trim() === '' ? undefined : address.trim()
}
