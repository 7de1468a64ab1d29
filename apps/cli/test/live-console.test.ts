import { input, rawlist } from '@inquirer/prompts'
import { describe, expect, test } from 'vitest'
import { LiveConsole } from '../src/view/live-console.js'
import { Capture, FakeTtyInput, KEY, renderScreen } from './helpers/streams.js'

const COLS = 80
const ROWS = 20

function terminal() {
  const stdin = new FakeTtyInput()
  const stdout = new Capture({ tty: true, columns: COLS, rows: ROWS })
  const ui = new LiveConsole(stdout)
  return { stdin, stdout, ui }
}

/** Types `text` and waits until the prompt has drawn it. */
async function type(t: ReturnType<typeof terminal>, text: string, expectOnScreen: string | RegExp) {
  const from = t.stdout.mark()
  t.stdin.write(text)
  await t.stdout.waitFor(expectOnScreen, { from })
}

describe('LiveConsole: lines printed above a live prompt (screen through @xterm/headless)', () => {
  test('a message arriving while the user types appears above the intact prompt; typed text kept', async () => {
    const t = terminal()
    const answer = input({ message: 'Message' }, t.ui.context({ input: t.stdin }))
    await t.stdout.waitFor('? Message')
    await type(t, 'hello', 'hello')

    t.ui.log('[alice] first')
    t.ui.log('[bob] second\n')
    await type(t, ' world', 'world')

    const screen = await renderScreen(t.stdout.raw, COLS, ROWS)
    expect(screen.lines).toEqual(['[alice] first', '[bob] second', '? Message hello world'])
    // The caret is still right after what was typed.
    expect(screen.cursor).toEqual({ x: '? Message hello world'.length, y: 2 })

    t.stdin.write(KEY.enter)
    await expect(answer).resolves.toBe('hello world')
    expect(t.ui.prompting).toBe(false)
    t.ui.log('[carol] after')
    expect((await renderScreen(t.stdout.raw, COLS, ROWS)).lines).toEqual([
      '[alice] first',
      '[bob] second',
      '✔ Message hello world',
      '[carol] after',
    ])
  })

  test('negative control: writing straight to the terminal garbles the prompt line', async () => {
    const t = terminal()
    const answer = input({ message: 'Message' }, t.ui.context({ input: t.stdin }))
    await t.stdout.waitFor('? Message')
    await type(t, 'hello', 'hello')
    t.stdout.write('[alice] first\n')
    await type(t, ' world', 'world')
    const screen = await renderScreen(t.stdout.raw, COLS, ROWS)
    expect(screen.lines).not.toEqual(['[alice] first', '? Message hello world'])
    t.stdin.write(KEY.enter)
    await answer
  })

  test('a multi-line menu keeps its highlighted choice and typed key while lines arrive', async () => {
    const t = terminal()
    const answer = rawlist(
      {
        message: 'Choose',
        choices: [
          { key: '1', name: 'Send message', value: 'send' },
          { key: '2', name: 'Query connected peers', value: 'peers' },
          { key: '0', name: 'Quit', value: 'quit' },
        ],
      },
      t.ui.context({ input: t.stdin }),
    )
    await t.stdout.waitFor('0) Quit')
    await type(t, KEY.down, '? Choose 1')
    await type(t, KEY.down, '? Choose 2')
    t.ui.log('12:00:00 bob (ab12:cd34): one\n                          two')
    t.ui.log('12:00:01 + carol (ef56:7890) joined')

    const screen = await renderScreen(t.stdout.raw, COLS, ROWS)
    expect(screen.lines).toEqual([
      '12:00:00 bob (ab12:cd34): one',
      '                          two',
      '12:00:01 + carol (ef56:7890) joined',
      '? Choose 2',
      '  1) Send message',
      '  2) Query connected peers',
      '  0) Quit',
    ])
    expect(screen.cursor).toEqual({ x: '? Choose 2'.length, y: 3 })
    t.stdin.write(KEY.enter)
    await expect(answer).resolves.toBe('peers')
  })

  test('0 picks the Quit entry of a rawlist, even after a line was printed', async () => {
    const t = terminal()
    const answer = rawlist(
      {
        message: 'Choose',
        choices: [
          { key: '1', name: 'Send message', value: 'send' },
          { key: '0', name: 'Quit', value: 'quit' },
        ],
      },
      t.ui.context({ input: t.stdin }),
    )
    await t.stdout.waitFor('0) Quit')
    await type(t, '0', '? Choose 0')
    t.ui.log('an event')
    t.stdin.write(KEY.enter)
    await expect(answer).resolves.toBe('quit')
    expect((await renderScreen(t.stdout.raw, COLS, ROWS)).lines).toEqual(['an event', '✔ Choose Quit'])
  })

  test('with no prompt showing, log() just writes the line', async () => {
    const t = terminal()
    t.ui.log('one')
    t.ui.log('two\n')
    expect(t.stdout.raw).toBe('one\ntwo\n')
  })

  test('a validation error under the input (text below the caret) survives a log line', async () => {
    const t = terminal()
    const answer = input(
      { message: 'Port', validate: (v: string) => /^\d+$/.test(v) || 'digits only' },
      t.ui.context({ input: t.stdin }),
    )
    await t.stdout.waitFor('? Port')
    await type(t, 'x', 'x')
    await type(t, KEY.enter, 'digits only')
    t.ui.log('[alice] hi')
    const screen = await renderScreen(t.stdout.raw, COLS, ROWS)
    expect(screen.lines).toEqual(['[alice] hi', '? Port x', '> digits only'])
    expect(screen.cursor).toEqual({ x: '? Port x'.length, y: 1 })
    await type(t, `${KEY.backspace}7`, '7')
    t.stdin.write(KEY.enter)
    await expect(answer).resolves.toBe('7')
  })
})
