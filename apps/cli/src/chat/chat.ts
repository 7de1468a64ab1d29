import { fingerprint, type PeerInfo } from '@parley/core'
import { broadcastMessage, connectTo, connectToAll, sendMessage, showPeers } from '../actions.js'
import type { App } from '../app-context.js'
import { unquote } from '../commands.js'
import { findConnected, namedLike, namesSelf } from '../find-connected.js'
import { checkAddress } from '../options.js'
import { acceptKey, showKeyChanges } from '../trust.js'
import { sanitize, wrapBlock } from '../view/format.js'
import type { TerminalStream } from '../view/live-console.js'
import type { PeerRef } from '../view/reporter.js'
import type { Style } from '../view/style.js'
import { chatHelp, completeChat, parseChatLine } from './chat-commands.js'
import { type ChatState, meansEveryone } from './chat-state.js'
import { ChatView } from './chat-view.js'

export interface ChatInit {
  app: App
  state: ChatState
  input: NodeJS.ReadableStream
  output: TerminalStream
  style: Style
  /** The view is made; from now on lines go through it (and back to the plain screen when it closes). */
  attach: (view: ChatView | undefined) => void
}

/** How the chat view ended: the user asked for the numbered menu, or the peer is shutting down. */
export type ChatExit = 'menu' | 'quit'

/**
 * Runs the chat view until /quit, Ctrl+C, Ctrl+D, /menu or shutdown. Messages are sent in the
 * background, so the input line is ready again at once; their outcome prints above it.
 */
export function runChat(init: ChatInit): Promise<ChatExit> {
  const { app, state, style } = init
  const listen = app.peer.addresses[0] ?? '(not listening)'
  const view = new ChatView({
    input: init.input,
    output: init.output,
    // Transfers running ride on the status line: redrawn in place, no extra lines, a few times a second.
    status: (width) => {
      const transfers = app.files?.statusText() ?? ''
      return state.status(listen, app.peer.peers().connected, transfers === '' ? [] : [transfers], width)
    },
    prompt: () => `[${state.conversation ? state.label(state.conversation) : 'everyone'}] › `,
    complete: (line) => completeChat(line, [...peerNames(app), 'everyone']),
    styleStatus: (text) => style('inverse', text),
    onError: (err) => app.outputGone(err),
  })
  const say = (text: string) => view.log(text)
  const note = (text: string) => app.reporter.note(text)
  // What the user asked for did not happen (a line not sent, an address that is not one): marked ✖.
  const refuse = (code: string, sentence: string) => app.reporter.problem({ code, sentence })

  return new Promise<ChatExit>((resolve) => {
    let ended = false
    const end = (how: ChatExit) => {
      if (ended) return
      ended = true
      app.signal.removeEventListener('abort', onAbort)
      view.close()
      init.attach(undefined)
      resolve(how)
    }
    const quit = () => {
      end('quit')
      void app.shutdown(0)
    }
    const onAbort = () => end('quit')
    app.signal.addEventListener('abort', onAbort, { once: true })

    // Ctrl+C reaches readline as a key (raw mode), not as a signal: it is the user asking to leave.
    view.rl.on('SIGINT', quit)
    // Ctrl+D on an empty line (or the end of input) closes readline.
    view.rl.on('close', () => {
      if (!ended) quit()
    })
    view.rl.on('line', (line: string) => {
      const input = parseChatLine(line)
      switch (input.kind) {
        case 'empty':
          view.refresh()
          return
        case 'unknown':
          note(`unknown command /${sanitize(input.name)} — /help lists the commands`)
          return
        case 'say':
          send(input.text)
          return
        case 'command':
          break
      }
      const arg = input.arg
      switch (input.name) {
        case 'help':
          say(chatHelp())
          return
        case 'quit':
          quit()
          return
        case 'menu':
          end('menu')
          return
        case 'to':
          switchTo(arg)
          return
        case 'r': {
          const last = state.lastSender
          if (!last) {
            note('nobody has written to you yet — /to <name> picks a peer')
            return
          }
          // The sender may have gone since: say so in its name, rather than core failing on a bare id.
          // (Not connected but not gone: being reconnected, or its session closed by a mesh; the line
          // is tried, and the send path says what becomes of it.)
          const here = app.peer.peers().connected.some((p) => p.id === last.id)
          if (!here && app.gone?.since(last.id) !== undefined) {
            if (arg === '') note(`${state.label(last)} has left — /peers lists who is connected`)
            else refuse('PEER_GONE', `${state.label(last)} has left; message not sent`)
            return
          }
          state.talkTo(last)
          if (arg !== '') send(arg)
          else view.refresh()
          return
        }
        case 'peers':
          void showPeers(app, true)
          return
        case 'connect': {
          if (arg === '') {
            note('usage: /connect <host:port>, e.g. /connect 127.0.0.1:4000')
            return
          }
          const bad = checkAddress(arg)
          if (bad !== undefined) {
            refuse('INVALID_ADDRESS', bad)
            return
          }
          void connectTo(app, arg)
          return
        }
        case 'all':
          void connectToAll(app)
          return
        case 'show': {
          const n = arg === '' ? undefined : Number(arg.replace(/^#/, ''))
          if (n !== undefined && !Number.isInteger(n)) {
            note('usage: /show [n], where n is the number of a folded message')
            return
          }
          const text = state.folds.get(n)
          if (text === undefined) {
            const kept = state.folds.numbers()
            const which =
              kept.length === 0
                ? 'no message has been folded'
                : kept.length === 1
                  ? `the one kept is #${kept[0]}`
                  : `those kept are #${kept[0]} to #${kept.at(-1)}`
            note(n === undefined ? 'no folded message to show' : `no folded message #${n}: ${which}`)
            return
          }
          // Under a header and indented, as every message is: a body printed at the left edge could
          // fake other peers' lines ("16:45:20 bob: …").
          say(wrapBlock(`folded #${n ?? 'latest'}: `, sanitize(text, true), init.output.columns || 80))
          return
        }
        case 'files':
          app.files?.list()
          return
        case 'send-file': {
          const parts = splitPeerAndPath(arg)
          if (!parts) {
            note('usage: /send-file <peer> <path>, e.g. /send-file bob ./photo.jpg')
            return
          }
          void app.files?.sendFile(app.peer, parts.peer, parts.path)
          return
        }
        case 'accept':
          void app.files?.accept(arg === '' ? undefined : arg)
          return
        case 'decline':
          app.files?.decline(arg === '' ? undefined : arg)
          return
        case 'cancel':
          if (arg === '') note('usage: /cancel <id> — /files lists the transfers and their ids')
          else app.files?.cancel(arg)
          return
        case 'trust':
          if (arg === '' || arg === '--full' || arg === 'full') showKeyChanges(app, arg !== '')
          else void acceptKey(app, arg)
          return
      }
    })

    const send = (text: string) => {
      const to = state.conversation
      if (to === undefined) {
        void broadcastMessage(app, text)
        return
      }
      // It said goodbye: core would refuse by its bare id. (A peer merely cut off may be redialed.)
      const here = app.peer.peers().connected.some((p) => p.id === to.id)
      if (!here && app.gone?.since(to.id) !== undefined) {
        refuse('PEER_GONE', `${state.label(to)} has left; message not sent — /to * talks to everyone`)
        return
      }
      // Cut off and being reconnected (or to be dialed again): core keeps the line until then.
      if (!here)
        note(
          `${state.label(to)} is not connected right now: the line goes if it is back in time, else it fails`,
        )
      void sendMessage(app, to.id, text, to)
    }

    const switchTo = (arg: string) => {
      if (arg === '' || meansEveryone(arg)) {
        state.talkTo(undefined)
        note('talking to everyone: each line goes to every connected peer, and on through the mesh')
        return
      }
      // `/to bob`, or `/to bob hi there` (as IRC's /msg): a peer, then a first message to it. The whole
      // argument is tried as a name first: names may hold spaces.
      const whole = resolvePeer(arg)
      const withText = whole.peer ? null : /^(?:"([^"]+)"|(\S+))\s+(.+)$/s.exec(arg)
      const who = withText ? (withText[1] ?? withText[2])! : arg
      const text = withText?.[3]
      if (text !== undefined && meansEveryone(who)) {
        state.talkTo(undefined)
        send(text)
        return
      }
      const found = text === undefined ? whole : resolvePeer(who)
      if (!found.peer) {
        if (text === undefined) note(found.said)
        else refuse(found.code, `${found.said}; nothing was sent`)
        return
      }
      state.talkTo({ id: found.peer.id, name: found.peer.name })
      if (text !== undefined) send(text)
      else
        note(`talking to ${state.label(found.peer)}: each line goes to this peer only (/to * for everyone)`)
    }

    /**
     * The connected peer `name` picks, or why there is none: a name picks a peer only when it means
     * one key and that peer is connected (names are claims); else a fingerprint or id prefix does.
     */
    const resolvePeer = (
      name: string,
    ): { peer: PeerInfo; said?: never } | { peer?: never; code: string; said: string } => {
      const connected = app.peer.peers().connected
      const here = (r: PeerRef) => connected.find((c) => c.id === r.id)
      const namesakes = namedLike(app.peer, name)
      if (namesakes.length > 1) {
        // Which is which, the connected ones first (only those can be talked to).
        const sorted = [...namesakes].sort((a, b) => Number(!!here(b)) - Number(!!here(a)))
        const list = sorted.map(
          (r) => `/to ${fingerprint(r.id)}${here(r) ? ' (connected)' : ' (not connected)'}`,
        )
        return {
          code: 'AMBIGUOUS',
          said: `${namesakes.length} peers are called ${sanitize(name)} — pick one by fingerprint: ${list.join(', ')}`,
        }
      }
      if (namesakes.length === 1) {
        const peer = here(namesakes[0]!)
        if (peer) return { peer }
        // The name means a key that is not connected; who connected calls itself so (a peer restarted
        // without --data-dir has a new key), and how to reach that one.
        const now = connected.filter((c) => c.name === name)
        const them =
          now.length === 0
            ? ''
            : `; connected now and calling itself so: ${now.map((c) => `${fingerprint(c.id)} (/to ${fingerprint(c.id).slice(0, 9)})`).join(', ')}`
        return {
          code: 'UNKNOWN_PEER',
          said: `${sanitize(name)} is the peer ${fingerprint(namesakes[0]!.id)}, which is not connected${them}`,
        }
      }
      const peer = findConnected(app.peer, name)
      if (peer) return { peer }
      // A fingerprint or id of a peer we know that is not connected now: say so, not "no peer".
      const bare = name.replace(/:/g, '').toLowerCase()
      const known = /^[0-9a-f]{8,}$/.test(bare)
        ? app.peer.peers().known.filter((k) => k.id.startsWith(bare))
        : []
      if (known.length === 1) {
        const k = known[0]!
        const at = k.addrs[0]
        const hint =
          at !== undefined && checkAddress(at) === undefined ? ` — /connect ${sanitize(at)} first` : ''
        return {
          code: 'NOT_CONNECTED',
          said: `${sanitize(k.name)} (${fingerprint(k.id)}) is not connected${hint}`,
        }
      }
      if (namesSelf(app.peer, name))
        return { code: 'UNKNOWN_PEER', said: `${sanitize(name)} is you — /peers lists the others` }
      const hint =
        checkAddress(name) === undefined ? ` — /connect ${sanitize(name)} first` : ' — /peers lists them'
      return { code: 'UNKNOWN_PEER', said: `no connected peer is called ${sanitize(name)}${hint}` }
    }

    init.attach(view)
    view.start()
  })
}

/** `bob ./a b.jpg` or `"bob smith" "./a b.jpg"`: the peer is the first word (or quoted phrase), the path the rest. */
export function splitPeerAndPath(arg: string): { peer: string; path: string } | undefined {
  const m = /^(?:"([^"]+)"|(\S+))\s+(.+)$/s.exec(arg.trim())
  if (!m) return undefined
  return { peer: (m[1] ?? m[2])!, path: unquote(m[3]!.trim()) }
}

function peerNames(app: App): string[] {
  return app.peer.peers().connected.map((p) => p.name)
}
