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
const FP = '[0-9a-f]{4}:[0-9a-f]{4}'

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
    test('a message typed at one peer appears at the other above its menu; Ctrl+C → 130, SIGTERM → 143', async () => {
      const alice = inPty(['--name', 'alice', '--port', '0'])
      const [, address] = await alice.waitFor(/listening on\s+(127\.0\.0\.1:\d+)/)
      await alice.waitFor('0) Quit')

      const bob = inPty(['--name', 'bob', '--port', '0', '--peer', address!])
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
      expect(screen.lines.slice(prompt + 1, prompt + 7).map((l) => l.trim())).toEqual([
        '1) Send message',
        '2) Query connected peers',
        '3) Connect to active peers',
        '4) Broadcast',
        '5) Connect to an address',
        '0) Quit',
      ])

      // Ctrl+C at alice's menu: graceful shutdown, exit 130; bob sees the goodbye.
      const bobFrom = bob.mark()
      alice.proc.stdin?.write('\x03')
      expect(await alice.exitCode()).toBe(130)
      await bob.waitFor(/- alice .* left: said goodbye/, { from: bobFrom })

      // SIGTERM to bob's process: the same shutdown, exit 143, cursor visible again.
      process.kill(bob.childPid(), 'SIGTERM')
      expect(await bob.exitCode()).toBe(143)
      expect(bob.text).toMatch(/stopped \(exit 143\)/)
      expect(bob.raw.lastIndexOf('\x1b[?25h')).toBeGreaterThan(bob.raw.lastIndexOf('\x1b[?25l'))
    }, 40_000)

    test('a busy port at start is one sentence and a question, not a stack trace', async () => {
      const alice = inPty(['--name', 'alice', '--port', '0'])
      const [, port] = await alice.waitFor(/listening on\s+127\.0\.0\.1:(\d+)/)
      const bob = inPty(['--name', 'bob', '--port', port!])
      await bob.waitFor(`port ${port} is in use — pick another with --port`)
      await bob.waitFor('? Port to listen on instead')
      expect(bob.text).not.toMatch(/\n\s+at /)
      await bob.keys('\r', '0) Quit')
      await bob.keys('0\r', 'stopped')
      expect(await bob.exitCode()).toBe(0)
    }, 30_000)
  },
)
