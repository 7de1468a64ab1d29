import type { BroadcastOptions, PeerInfo, ReceivedMessage, SendResult } from '@parley/core'
import { fingerprint } from '@parley/core'
import { describe, expect, test, vi } from 'vitest'
import { broadcastMessage } from '../src/actions.js'
import type { App } from '../src/app-context.js'
import { completeChat, parseChatLine } from '../src/chat/chat-commands.js'
import { ChatState } from '../src/chat/chat-state.js'
import { cutToWidth } from '../src/chat/chat-view.js'
import { FOLD_KEEP, FoldStore } from '../src/chat/fold.js'
import { Inbox } from '../src/inbox.js'
import { displayWidth } from '../src/view/format.js'

const id = (c: string) => c.repeat(64)
const msg = (from: string, name: string, text: string): ReceivedMessage => ({
  id: `${from}-${text}`,
  from: { id: id(from), name },
  text,
  sentAt: 0,
  receivedAt: 0,
})

describe('chat lines', () => {
  test('a line without / is a message; //x sends /x; commands take unique prefixes and aliases', () => {
    expect(parseChatLine('hello')).toEqual({ kind: 'say', text: 'hello' })
    expect(parseChatLine('//etc/passwd')).toEqual({ kind: 'say', text: '/etc/passwd' })
    expect(parseChatLine('   ')).toEqual({ kind: 'empty' })
    expect(parseChatLine('/TO  bob smith ')).toEqual({ kind: 'command', name: 'to', arg: 'bob smith' })
    expect(parseChatLine('/pe')).toEqual({ kind: 'command', name: 'peers', arg: '' })
    expect(parseChatLine('/exit')).toEqual({ kind: 'command', name: 'quit', arg: '' })
    expect(parseChatLine('/t')).toEqual({ kind: 'unknown', name: 't' }) // /to or /trust
    expect(parseChatLine('/nope x')).toEqual({ kind: 'unknown', name: 'nope' })
  })

  test('Tab completes command words, then peer names after /to; nothing in a message', () => {
    expect(completeChat('/he', [])).toEqual([['/help'], '/he'])
    expect(completeChat('/t', [])).toEqual([['/to ', '/trust '], '/t'])
    expect(completeChat('/to b', ['bob', 'Bea', 'carol'])).toEqual([['Bea ', 'bob '], 'b'])
    // A name with a space is completed in quotes, so text typed after it is not taken for its rest.
    expect(completeChat('/to bob s', ['bob smith', 'bob'])).toEqual([['"bob smith" '], 'bob s'])
    expect(completeChat('/to Z', ['Zoë 🚀 smith'])).toEqual([['"Zoë 🚀 smith" '], 'Z'])
    expect(completeChat('/to "b', ['bob'])).toEqual([['"bob" '], '"b'])
    // After the peer comes the path: the completed name ends with a space, as a command does.
    expect(completeChat('/send-file al', ['alice'])).toEqual([['alice '], 'al'])
    expect(completeChat('/peers x', ['x'])).toEqual([[], '/peers x'])
    expect(completeChat('hello /to', ['bob'])).toEqual([[], 'hello /to'])
  })
})

describe('folding long messages', () => {
  test('short messages pass; long ones show their head and how to see them whole; only the last few are kept', () => {
    const store = new FoldStore()
    expect(store.fold('short')).toBe('short')
    const long = Array.from({ length: 500 }, (_, i) => `row ${i}`).join('\n')
    const folded = store.fold(long)
    expect(folded.split('\n')).toHaveLength(4)
    expect(folded).toMatch(/^row 0\nrow 1\nrow 2…\n\[folded #1: .*, 500 lines — \/show 1 shows it whole\]$/)
    expect(store.get(1)).toBe(long)
    expect(store.get()).toBe(long)
    const wide = 'x'.repeat(60_000)
    expect(store.fold(wide)).toMatch(/\[folded #2: 59 KB, 1 line/)
    for (let i = 0; i < FOLD_KEEP; i++) store.fold(long)
    expect(store.get(1)).toBeUndefined()
    expect(store.get(2 + FOLD_KEEP)).toBe(long)
    // What /show says when asked for one forgotten: the numbers still kept.
    expect(store.numbers()).toEqual(Array.from({ length: FOLD_KEEP }, (_, i) => 3 + i))
  })
})

describe('the inbox keeps replies after the sender’s own delivery line', () => {
  test('messages from a peer wait while a send to it waits, then come in order; others pass', () => {
    const shown: string[] = []
    const box = new Inbox((m) => shown.push(m.text))
    const release = box.hold([id('b')])
    box.deliver(msg('b', 'bob', 'echo: hi'))
    box.deliver(msg('c', 'carol', 'unrelated'))
    box.deliver(msg('b', 'bob', 'second'))
    expect(shown).toEqual(['unrelated'])
    shown.push('✔ you → bob: hi')
    release()
    release()
    expect(shown).toEqual(['unrelated', '✔ you → bob: hi', 'echo: hi', 'second'])
  })

  test('past its bound the inbox shows what it held, in order, before the newest', () => {
    const shown: string[] = []
    const box = new Inbox((m) => shown.push(m.text))
    box.hold([id('b')])
    for (let i = 0; i < 1_500; i++) box.deliver(msg('b', 'bob', String(i)))
    expect(shown).toEqual(Array.from({ length: 1_000 }, (_, i) => String(i)))
  })

  test("a broadcast shows each peer's answers once that peer acknowledged, not once the slowest did", async () => {
    const shown: string[] = []
    const box = new Inbox((m) => shown.push(m.text))
    const acks = new Map<string, (r: SendResult) => void>()
    const peers = [
      { id: id('b'), name: 'bob' },
      { id: id('c'), name: 'carol' },
    ]
    const app = {
      peer: {
        peers: () => ({ connected: peers, known: [] }),
        // As core does: each peer's result to onResult as soon as that peer acknowledges.
        broadcast: (_text: string, options: BroadcastOptions) =>
          Promise.all(
            peers.map((p) =>
              new Promise<SendResult>((resolve) => acks.set(p.id, resolve)).then((result) => {
                const r = { peerId: p.id, ok: true as const, result }
                options.onResult?.(r)
                return r
              }),
            ),
          ),
      },
      reporter: {
        delivered: (to: { name: string }) => shown.push(`✔ you → ${to.name}`),
        notDelivered: (to: string) => shown.push(`✖ ${to}`),
      },
      logger: { log: () => {} },
      hold: (ids: readonly string[]) => box.hold(ids),
    } as unknown as App
    const done = broadcastMessage(app, 'hi all')
    box.deliver(msg('b', 'bob', 're: hi all'))
    acks.get(id('b'))!({ id: 'm1', peerId: id('b'), ackedAt: 0 })
    await vi.waitFor(() => expect(shown).toEqual(['✔ you → bob', 're: hi all']))
    acks.get(id('c'))!({ id: 'm2', peerId: id('c'), ackedAt: 0 })
    await done
    expect(shown).toEqual(['✔ you → bob', 're: hi all', '✔ you → carol'])
  })

  test('two sends to the same peer: held until both are done', () => {
    const shown: string[] = []
    const box = new Inbox((m) => shown.push(m.text))
    const one = box.hold([id('b')])
    const two = box.hold([id('b')])
    box.deliver(msg('b', 'bob', 'x'))
    one()
    expect(shown).toEqual([])
    two()
    expect(shown).toEqual(['x'])
  })
})

describe('chat state', () => {
  test('names that print the same are namesakes, and a newcomer imitating a saved peer is marked', () => {
    const state = new ChatState({ id: id('a'), name: 'alice' }, () => ['bob'])
    // A saved name (from before the wire refused controls) that prints as "carol".
    state.see({ id: id('c'), name: 'carol' })
    expect(state.label({ id: id('d'), name: 'carol\0' })).toBe(
      `carol ⚠ (look-alike of carol) (${fingerprint(id('d'))})`,
    )
    expect(state.label({ id: id('c'), name: 'carol' })).toBe(`carol (${fingerprint(id('c'))})`)
    // bob is saved with his key but not connected: "Bob" passes for him.
    expect(state.label({ id: id('e'), name: 'Bob' })).toBe(
      `Bob ⚠ (look-alike of bob) (${fingerprint(id('e'))})`,
    )
  })

  test('a narrow status line gives up peer names before the unread count and the transfers', () => {
    const state = new ChatState({ id: id('a'), name: 'alice' })
    state.talkTo({ id: id('c'), name: 'carol' })
    state.received(msg('b', 'bob', 'hi'))
    const peer = (c: string, name: string) => ({ id: id(c), name }) as unknown as PeerInfo
    const peers = [peer('b', 'bob'), peer('c', 'carol'), peer('d', 'dave')]
    const extra = ['↑ huge.bin 27% waiting for the receiver']
    const wide = state.status('127.0.0.1:4000', peers, extra)
    expect(wide).toBe(
      ' alice · 127.0.0.1:4000 · 3 peers: bob, carol, dave · 1 unread (bob) · ↑ huge.bin 27% waiting for the receiver · /help',
    )
    // The help hint goes first, then names.
    expect(state.status('127.0.0.1:4000', peers, extra, 110)).toBe(
      ' alice · 127.0.0.1:4000 · 3 peers: bob, carol, dave · 1 unread (bob) · ↑ huge.bin 27% waiting for the receiver',
    )
    expect(state.status('127.0.0.1:4000', peers, extra, 100)).toBe(
      ' alice · 127.0.0.1:4000 · 3 peers: bob +2 · 1 unread (bob) · ↑ huge.bin 27% waiting for the receiver',
    )
    expect(state.status('127.0.0.1:4000', peers, extra, 95)).toBe(
      ' alice · 127.0.0.1:4000 · 3 peers · 1 unread (bob) · ↑ huge.bin 27% waiting for the receiver',
    )
    // Then the senders' names: the unread count and the transfer stay.
    expect(state.status('127.0.0.1:4000', peers, extra, 85)).toBe(
      ' alice · 127.0.0.1:4000 · 3 peers · 1 unread · ↑ huge.bin 27% waiting for the receiver',
    )
  })

  test('unread counts messages from others than the current peer; /to clears them; namesakes get fingerprints', () => {
    const state = new ChatState({ id: id('a'), name: 'alice' })
    state.received(msg('b', 'bob', 'hi'))
    expect(state.unreadCount).toBe(0)
    state.talkTo({ id: id('b'), name: 'bob' })
    state.received(msg('c', 'carol', '1'))
    state.received(msg('c', 'carol', '2'))
    state.received(msg('b', 'bob', 'to me'))
    expect(state.unreadCount).toBe(2)
    expect(state.lastSender).toEqual({ id: id('b'), name: 'bob' })
    expect(state.status('127.0.0.1:4000', [])).toBe(
      ' alice · 127.0.0.1:4000 · no peers · 2 unread (carol) · /help',
    )
    state.talkTo({ id: id('c'), name: 'carol' })
    expect(state.unreadCount).toBe(0)

    expect(state.label({ id: id('b'), name: 'bob' })).toBe('bob')
    state.see({ id: id('d'), name: 'bob' })
    expect(state.label({ id: id('b'), name: 'bob' })).toBe('bob (bbbb:bbbb:bbbb:bbbb)')
    expect(state.label({ id: id('e'), name: 'alice' })).toBe('alice (eeee:eeee:eeee:eeee)')
    // A peer named like the broadcast conversation is shown with its fingerprint: `[everyone] ›` is
    // only ever the broadcast prompt.
    expect(state.label({ id: id('a'), name: 'Everyone' })).toBe(`Everyone (${fingerprint(id('a'))})`)
    expect(state.label({ id: id('a'), name: 'all' })).toBe(`all (${fingerprint(id('a'))})`)
    // A peer shown by its own fingerprint needs it once.
    expect(state.label({ id: id('b'), name: fingerprint(id('b')) })).toBe(fingerprint(id('b')))
    // A name written like an id or another's fingerprint gets its own: it could pass for that peer.
    expect(state.label({ id: id('a'), name: fingerprint(id('b')) })).toBe(
      `${fingerprint(id('b'))} (${fingerprint(id('a'))})`,
    )
    // A name that starts with a symbol could print a line that passes for the screen's own.
    for (const name of ['- alice left', '✔ you → alice', '+ mallory']) {
      expect(state.label({ id: id('f'), name })).toBe(
        `${name} ⚠ (starts with a symbol) (${fingerprint(id('f'))})`,
      )
    }
    // Controls are never shown, and a name that held one is marked and identified.
    expect(state.label({ id: id('f'), name: 'evil\x1b[2J' })).toBe(
      `evil[2J ⚠ (hidden characters) (${fingerprint(id('f'))})`,
    )
  })
})

describe('status line width', () => {
  test('wide characters count twice, so the status line never wraps; it is not padded', () => {
    expect(displayWidth('abc')).toBe(3)
    expect(displayWidth('李雷')).toBe(4)
    expect(cutToWidth('abc', 5)).toBe('abc')
    expect(cutToWidth('李雷和韩梅梅', 7)).toBe('李雷和…')
    expect(displayWidth(cutToWidth('李雷和韩梅梅', 8))).toBeLessThanOrEqual(8)
    expect(cutToWidth('abcdef', 4)).toBe('abc…')
  })
})
