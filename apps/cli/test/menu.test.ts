import { createTestNetwork, inbox, waitFor } from '@parley/testing'
import { describe, expect, onTestFinished, test } from 'vitest'
import { type CliRun, startCli } from './helpers/cli.js'
import { KEY, renderScreen } from './helpers/streams.js'

const COLS = 100
const ROWS = 40
const FP = '[0-9a-f]{4}(?::[0-9a-f]{4}){3}'

async function setup(names: string[] = ['bob']) {
  const net = await createTestNetwork({ size: names.length, names })
  onTestFinished(() => net.stop())
  return net
}

/** An interactive CLI on fake TTY streams; resolves once the main menu is showing. */
async function interactive(net: Awaited<ReturnType<typeof setup>>, extra: string[] = []) {
  const cli = startCli(['--menu', '--name', 'alice', '--host', 'alice', '--port', '0', ...extra], {
    network: net.network,
    tty: true,
    columns: COLS,
    rows: ROWS,
  })
  await cli.stdout.waitFor('0) Quit')
  return cli
}

/** Types keys, then waits for `expected` to be drawn after them. */
async function keys(cli: CliRun, input: string, expected: string | RegExp) {
  const from = cli.stdout.mark()
  cli.stdin.write(input)
  return cli.stdout.waitFor(expected, { from })
}

/** Picks a menu entry by number key + Enter and waits for what it shows next. */
function choose(cli: CliRun, key: string, expected: string | RegExp) {
  return keys(cli, `${key}${KEY.enter}`, expected)
}

async function screen(cli: CliRun) {
  return (await renderScreen(cli.stdout.raw, COLS, ROWS)).lines
}

describe('interactive menu over injected TTY streams', () => {
  test('the terminal closed under a menu (raw mode fails: EIO) stops gracefully: goodbyes, exit 129', async () => {
    const net = await setup()
    const bob = net.peer('bob')
    const cli = await interactive(net, ['--peer', net.address(bob)])
    await cli.stdout.waitFor(/✔ connected to bob/)
    const left = waitFor(bob, 'peer:disconnect')
    cli.stdin.hungUp = true
    cli.stdin.end()
    expect(await cli.exited).toBe(129)
    expect((await left).reason).toBe('goodbye')
  })

  test('1 → pick a peer → type → Enter delivers; 0 quits with exit code 0', async () => {
    const net = await setup()
    const bob = net.peer('bob')
    const got = inbox(bob)
    const cli = await interactive(net, ['--peer', net.address(bob)])
    await cli.stdout.waitFor(/✔ connected to bob/)

    await choose(cli, '1', '? Send to')
    await choose(cli, '1', '? Message')
    await keys(cli, 'hello from the menu', 'hello from the menu')
    await keys(cli, KEY.enter, '0) Quit')
    await got.waitForCount(1)
    expect(got.texts()).toEqual(['hello from the menu'])
    await cli.stdout.waitFor(new RegExp(`✔ you → bob \\(${FP}\\): hello from the menu`))

    const left = waitFor(bob, 'peer:disconnect')
    await choose(cli, '0', 'stopped')
    expect(await cli.exited).toBe(0)
    expect((await left).reason).toBe('goodbye')
    expect(cli.stdout.raw.endsWith('\x1b[?25h')).toBe(true)
  })

  test('a message arriving mid-typing prints above the prompt; the typed text survives and is sent', async () => {
    const net = await setup()
    const bob = net.peer('bob')
    const got = inbox(bob)
    const cli = await interactive(net, ['--peer', net.address(bob)])
    await cli.stdout.waitFor(/✔ connected to bob/)
    await choose(cli, '1', '? Send to')
    await choose(cli, '1', '? Message')
    await keys(cli, 'half a thou', 'half a thou')

    const from = cli.stdout.mark()
    await bob.send(bob.peers().connected[0]!.id, 'interrupting!')
    await cli.stdout.waitFor('interrupting!', { from })
    await keys(cli, 'ght', 'ght')

    const lines = await screen(cli)
    const last = lines.length - 1
    expect(lines[last - 1]).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d bob \\(${FP}\\): interrupting!$`))
    expect(lines[last]).toMatch(/^\? Message .*half a thought$/)

    await keys(cli, KEY.enter, '0) Quit')
    await got.waitForCount(1)
    expect(got.texts()).toEqual(['half a thought'])
  })

  test('a message may span lines: a trailing backslash continues', async () => {
    const net = await setup()
    const bob = net.peer('bob')
    const got = inbox(bob)
    const cli = await interactive(net, ['--peer', net.address(bob)])
    await cli.stdout.waitFor(/✔ connected to bob/)
    await choose(cli, '1', '? Send to')
    await choose(cli, '1', '? Message')
    await keys(cli, `first line\\${KEY.enter}`, '? …')
    await keys(cli, `second line${KEY.enter}`, '0) Quit')
    await got.waitForCount(1)
    expect(got.texts()).toEqual(['first line\nsecond line'])
  })

  test('2 shows the peers table; 3 connects to peers learned by exchange; 4 broadcasts', async () => {
    const net = await setup(['bob', 'carol'])
    await net.connect(net.peer('carol'), net.peer('bob'))
    const inboxes = net.peers.map((p) => inbox(p))
    const cli = await interactive(net, ['--peer', net.address(net.peer('bob'))])
    await cli.stdout.waitFor(/✔ connected to bob/)

    await choose(
      cli,
      '2',
      /connected peers \(1\)[\s\S]*known, not connected \(1\)[\s\S]*carol[\s\S]*0\) Quit/,
    )
    await choose(cli, '3', /✔ connected to carol .*[\s\S]*0\) Quit/)
    await choose(cli, '4', '? Broadcast')
    await keys(cli, `to everyone${KEY.enter}`, '0) Quit')
    await Promise.all(inboxes.map((i) => i.waitForCount(1)))
    expect(inboxes.map((i) => i.texts())).toEqual([['to everyone'], ['to everyone']])
    await cli.stdout.waitFor(/✔ you → (bob|carol)[\s\S]*✔ you → (bob|carol)/)
  })

  test('a bad address is refused by the prompt; an unreachable one is one sentence and the menu returns', async () => {
    const net = await setup()
    const cli = await interactive(net)
    await choose(cli, '1', '? Address')
    await keys(cli, `nonsense${KEY.enter}`, '"nonsense" is not host:port')
    await keys(cli, `${KEY.backspace.repeat(8)}nohost:9${KEY.enter}`, '0) Quit')
    await cli.stdout.waitFor(
      /✖ could not connect to nohost:9: nohost:9 refused the connection — is a peer listening there\?/,
    )
    expect(cli.stdout.text).not.toMatch(/\n\s+at /)
    // The menu is back and works.
    await choose(cli, '5', '? Address')
    await keys(cli, KEY.enter, '0) Quit')
  })

  test('a number that is not listed is refused, not taken as a position; 9 opens the chat view', async () => {
    const net = await setup()
    const cli = await interactive(net)
    await choose(cli, '12', `"12" isn't an available option`)
    await keys(cli, `${KEY.backspace.repeat(2)}9${KEY.enter}`, '[everyone] › ')
    expect(cli.stdout.text).not.toMatch(/stopped/)
    await keys(cli, `/menu${KEY.enter}`, '9) Back to the chat view')
  })

  test('Ctrl+C in a prompt is the user leaving: graceful shutdown, exit 0, the peer sees the goodbye', async () => {
    const net = await setup()
    const bob = net.peer('bob')
    const cli = await interactive(net, ['--peer', net.address(bob)])
    await cli.stdout.waitFor(/✔ connected to bob/)
    const left = waitFor(bob, 'peer:disconnect')
    cli.stdin.write(KEY.ctrlC)
    expect(await cli.exited).toBe(0)
    expect((await left).reason).toBe('goodbye')
    expect(cli.stdout.text).toMatch(/stopped; said goodbye to every peer/)
  })

  test('Ctrl+C twice quickly: a second SIGINT after the stop finished does not turn exit 0 into 130', async () => {
    const net = await setup()
    const cli = await interactive(net)
    cli.stdin.write(KEY.ctrlC)
    expect(await cli.exited).toBe(0)
    // The stop took milliseconds; the habitual second Ctrl+C lands while the process is exiting.
    cli.kill('SIGINT')
    expect(cli.killedBy).toEqual([])
    expect(cli.forcedExits).toEqual([])
  })

  test('SIGTERM while a prompt is open aborts it, says goodbye and exits 143 with the cursor shown', async () => {
    const net = await setup()
    const bob = net.peer('bob')
    const cli = await interactive(net, ['--peer', net.address(bob)])
    await cli.stdout.waitFor(/✔ connected to bob/)
    await choose(cli, '1', '? Send to')
    const left = waitFor(bob, 'peer:disconnect')
    cli.signals.emit('SIGTERM')
    expect(await cli.exited).toBe(143)
    expect((await left).reason).toBe('goodbye')
    expect(cli.stdout.raw.endsWith('\x1b[?25h')).toBe(true)
  })

  test('asks for the name only when no flag or variable gave one', async () => {
    const net = await setup()
    const cli = startCli(['--menu', '--host', 'zed', '--port', '0'], { network: net.network, tty: true })
    await cli.stdout.waitFor('? Your name')
    await keys(cli, `${KEY.backspace.repeat(40)}zed${KEY.enter}`, '0) Quit')
    expect(cli.stdout.text).toMatch(/Parley \S+ · zed/)
    await choose(cli, '0', 'stopped')
    expect(await cli.exited).toBe(0)

    const named = startCli(['--menu', '--host', 'amy', '--port', '0'], {
      network: net.network,
      tty: true,
      env: { PARLEY_NAME: 'amy' },
    })
    await named.stdout.waitFor('0) Quit')
    expect(named.stdout.text).not.toMatch(/Your name/)
    expect(named.stdout.text).toMatch(/Parley \S+ · amy/)
  })

  test('a busy port is one sentence, then the program asks for another', async () => {
    const net = await setup()
    const first = await interactive(net, ['--port', '7'])
    expect(first.stdout.text).toMatch(/listening on\s+alice:7/)
    const second = startCli(['--menu', '--name', 'al', '--host', 'alice', '--port', '7'], {
      network: net.network,
      tty: true,
    })
    await second.stdout.waitFor('port 7 is in use — pick another with --port')
    await second.stdout.waitFor('? Port to listen on instead')
    await keys(second, KEY.enter, '0) Quit')
    expect(second.stdout.text).toMatch(/listening on\s+alice:(?!7\b)\d+/)
  })
})
