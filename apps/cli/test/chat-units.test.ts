import type { ReceivedMessage } from '@parley/core'
import { describe, expect, test } from 'vitest'
import { completeChat, parseChatLine } from '../src/chat/chat-commands.js'
import { ChatState } from '../src/chat/chat-state.js'
import { cutToWidth, displayWidth } from '../src/chat/chat-view.js'
import { FOLD_KEEP, FoldStore } from '../src/chat/fold.js'
import { Inbox } from '../src/inbox.js'

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
    expect(completeChat('/to b', ['bob', 'Bea', 'carol'])).toEqual([['Bea', 'bob'], 'b'])
    expect(completeChat('/to bob s', ['bob smith', 'bob'])).toEqual([['bob smith'], 'bob s'])
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
    expect(state.label({ id: id('f'), name: 'evil\x1b[2J' })).toBe('evil[2J')
  })
})

describe('status line width', () => {
  test('wide characters count twice, so the status line never wraps', () => {
    expect(displayWidth('abc')).toBe(3)
    expect(displayWidth('李雷')).toBe(4)
    expect(cutToWidth('abc', 5)).toBe('abc  ')
    expect(cutToWidth('李雷和韩梅梅', 7)).toBe('李雷和…')
    expect(displayWidth(cutToWidth('李雷和韩梅梅', 8))).toBe(8)
    expect(cutToWidth('abcdef', 4)).toBe('abc…')
  })
})
