import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, onTestFinished, test } from 'vitest'
import { PipedProgram } from './helpers/piped.js'
import { PtyProgram } from './helpers/pty.js'

const here = fileURLToPath(new URL('..', import.meta.url))
const main = fileURLToPath(new URL('../dist/main.js', import.meta.url))
const hasScript = process.platform === 'linux' && existsSync('/usr/bin/script')
const FP = '[0-9a-f]{4}(?::[0-9a-f]{4}){3}'

beforeAll(() => {
  // Test what users run: dist/. Build it here so `pnpm test` never runs a stale binary.
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: here, stdio: 'pipe' })
}, 60_000)

function inPty(args: string[]): PtyProgram {
  const p = new PtyProgram(main, args, 100, 30)
  onTestFinished(() => p.kill())
  return p
}

describe('the built program driven through pipes, two peers over TCP', () => {
  test('commands on stdin, one line per event on stdout, NDJSON with --json; EOF keeps it running', async () => {
    const alice = new PipedProgram(main, ['--name', 'alice', '--port', '0'])
    const [, address] = await alice.waitFor(/listening on (127\.0\.0\.1:\d+) as alice/)
    const bob = new PipedProgram(main, ['--json', '--name', 'bob', '--port', '0', '--peer', address!])
    await bob.waitFor(/"type":"connected"/)

    bob.line('send alice hello through a pipe')
    await alice.waitFor(new RegExp(`^\\d\\d:\\d\\d:\\d\\d bob \\(${FP}\\): hello through a pipe$`, 'm'))
    await bob.waitFor(/"type":"delivered"/)

    // End of input does not stop alice (daemon mode): she still receives and still obeys signals.
    alice.proc.stdin.end()
    bob.line('send alice still there?')
    await alice.waitFor(/still there\?/)

    bob.line('quit')
    expect(await bob.exitCode()).toBe(0)
    await alice.waitFor(/- bob .* left: said goodbye/)
    for (const line of bob.out.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow()
    expect(bob.err).toBe('')

    alice.proc.kill('SIGTERM')
    expect(await alice.exitCode()).toBe(143)
    expect(alice.out).not.toMatch(/\x1b\[/)
  }, 30_000)
})

describe.skipIf(!hasScript)(
  'the built program in a real terminal (script(1) pty), two peers over TCP',
  () => {
    test('with --menu: a message typed at one peer appears at the other above its menu; Ctrl+C → 0, SIGTERM → 143', async () => {
      const alice = inPty(['--menu', '--name', 'alice', '--port', '0'])
      const [, address] = await alice.waitFor(/listening on\s+(127\.0\.0\.1:\d+)/)
      await alice.waitFor('0) Quit')

      const bob = inPty(['--menu', '--name', 'bob', '--port', '0', '--peer', address!])
      await bob.waitFor(/✔ connected to alice/)
      await bob.waitFor('0) Quit')
      await alice.waitFor(/\+ bob .* joined/)

      await alice.keys('1\r', '? Send to')
      await alice.keys('1\r', '? Message')
      await alice.keys('hello over tcp', 'hello over tcp')
      const from = bob.mark()
      alice.proc.stdin?.write('\r')
      await bob.waitFor(new RegExp(`alice \\(${FP}\\): hello over tcp`), { from })
      await alice.waitFor(/✔ you → bob .*: hello over tcp/)

      // On bob's screen the message sits right above the intact menu.
      const screen = await bob.screen()
      const prompt = screen.lines.findLastIndex((l) => l.startsWith('? bob — choose'))
      expect(prompt).toBeGreaterThan(0)
      expect(screen.lines[prompt - 1]).toMatch(
        new RegExp(`^\\d\\d:\\d\\d:\\d\\d alice \\(${FP}\\): hello over tcp$`),
      )
      expect(screen.lines.slice(prompt + 1, prompt + 11).map((l) => l.trim())).toEqual([
        '1) Send message',
        '2) Query connected peers',
        '3) Connect to active peers',
        '4) Broadcast',
        '5) Connect to an address',
        '6) Key changes (trust)',
        '7) Send a file',
        '8) Files: offers (accept, decline) and transfers (cancel)',
        '9) Chat view',
        '0) Quit',
      ])

      // Ctrl+C at alice's menu is her leaving: graceful shutdown, exit 0; bob sees the goodbye.
      const bobFrom = bob.mark()
      alice.proc.stdin?.write('\x03')
      expect(await alice.exitCode()).toBe(0)
      await bob.waitFor(/- alice .* left: said goodbye/, { from: bobFrom })

      // SIGTERM to bob's process: the same shutdown, exit 143, cursor visible again.
      process.kill(bob.childPid(), 'SIGTERM')
      expect(await bob.exitCode()).toBe(143)
      expect(bob.text).toMatch(/stopped \(exit 143\)/)
      expect(bob.raw.lastIndexOf('\x1b[?25h')).toBeGreaterThan(bob.raw.lastIndexOf('\x1b[?25l'))
    }, 40_000)

    test('the chat view: bob types a line, alice sees it above her status and input lines; /help; Ctrl+C → 0, no stack', async () => {
      const alice = inPty(['--name', 'alice', '--port', '0'])
      const [, address] = await alice.waitFor(/listening on\s+(127\.0\.0\.1:\d+)/)
      await alice.waitFor('[everyone] › ')
      const bob = inPty(['--name', 'bob', '--peer', address!])
      await bob.waitFor(/✔ connected to alice/)
      // Where bob's connection comes from, and where he says he listens (a claim, so said as one).
      await alice.waitFor(/\+ bob joined \(inbound, 127\.0\.0\.1:\d+, says it listens at 127\.0\.0\.1:\d+\)/)

      await alice.keys('not sent yet', 'not sent yet')
      const from = alice.mark()
      await bob.keys('hello alice', 'hello alice')
      bob.proc.stdin?.write('\r')
      await alice.waitFor(/bob: hello alice/, { from })
      await bob.waitFor(/✔ you → alice: hello alice/)

      // The prompt is redrawn right after the incoming line: wait for the redraw, not a fixed time.
      await expect
        .poll(
          async () => (await alice.screen()).lines.some((l) => l.trimEnd() === '[everyone] › not sent yet'),
          {
            timeout: 5_000,
          },
        )
        .toBe(true)
      const screen = await alice.screen()
      const input = screen.lines.findLastIndex((l) => l.startsWith('[everyone] › '))
      expect(screen.lines[input]?.trimEnd()).toBe('[everyone] › not sent yet')
      expect(screen.lines[input - 1]).toMatch(/^ alice · 127\.0\.0\.1:\d+ · 1 peer: bob · no unread · \/help/)
      expect(screen.lines[input - 2]).toMatch(/^\d\d:\d\d:\d\d bob: hello alice$/)
      expect(screen.cursor).toEqual({ x: '[everyone] › not sent yet'.length, y: input })

      // Tab completes the command, then a peer name.
      await bob.keys('/he\t', 'lp')
      expect((await bob.screen()).lines.findLast((l) => l.startsWith('[everyone] › '))?.trimEnd()).toBe(
        '[everyone] › /help',
      )
      await bob.keys('\r', '/quit')
      expect(bob.text).toMatch(/\/to <name>/)
      await bob.keys('/to al\t', 'ice')
      await bob.keys('\r', '[alice] › ')
      expect(bob.text).toMatch(/talking to alice: each line goes to this peer only/)

      const bobFrom = bob.mark()
      alice.proc.stdin?.write('\x03')
      expect(await alice.exitCode()).toBe(0)
      await bob.waitFor(/- alice left: said goodbye/, { from: bobFrom })
      expect(alice.text).toMatch(/stopped; said goodbye to every peer/)
      expect(alice.text).not.toMatch(/\n\s+at |ERR_|Error/)
      bob.proc.stdin?.write('/quit\r')
      expect(await bob.exitCode()).toBe(0)
    }, 40_000)

    test('a busy port at start is one sentence and a question, not a stack trace', async () => {
      const alice = inPty(['--menu', '--name', 'alice', '--port', '0'])
      const [, port] = await alice.waitFor(/listening on\s+127\.0\.0\.1:(\d+)/)
      const bob = inPty(['--menu', '--name', 'bob', '--port', port!])
      await bob.waitFor(`port ${port} is in use — pick another with --port`)
      await bob.waitFor('? Port to listen on instead')
      expect(bob.text).not.toMatch(/\n\s+at /)
      await bob.keys('\r', '0) Quit')
      await bob.keys('0\r', 'stopped')
      expect(await bob.exitCode()).toBe(0)
    }, 30_000)
  },
)
