import { stripVTControlCharacters } from 'node:util'
import { createPeer, fingerprint, memoryTransport } from '@parley/core'
import { createTestNetwork, inbox, waitFor } from '@parley/testing'
import { describe, expect, onTestFinished, test } from 'vitest'
import { type CliRun, startCli } from './helpers/cli.js'
import { KEY, renderScreen } from './helpers/streams.js'

const COLS = 100
const ROWS = 40
const FP = '[0-9a-f]{4}(?::[0-9a-f]{4}){3}'
const TAB = '\t'

async function setup(names: string[] = ['bob']) {
  const net = await createTestNetwork({ size: names.length, names })
  onTestFinished(() => net.stop())
  return net
}

/** The chat view on fake TTY streams, connected to every peer of the network; resolves once it is ready. */
async function chat(net: Awaited<ReturnType<typeof setup>>, extra: string[] = []) {
  const peers = net.peers.flatMap((p) => ['--peer', net.address(p)])
  const cli = startCli(['--name', 'alice', '--host', 'alice', '--port', '0', ...peers, ...extra], {
    network: net.network,
    tty: true,
    columns: COLS,
    rows: ROWS,
  })
  await cli.stdout.waitFor(`${net.peers.length} peer${net.peers.length === 1 ? '' : 's'}:`)
  await cli.stdout.waitFor('[everyone] › ')
  return cli
}

async function keys(cli: CliRun, input: string, expected: string | RegExp) {
  const from = cli.stdout.mark()
  cli.stdin.write(input)
  return cli.stdout.waitFor(expected, { from })
}

async function screen(cli: CliRun) {
  return renderScreen(cli.stdout.raw, COLS, ROWS)
}

/** The last two rows in use: the status line and the input line. */
async function bottom(cli: CliRun): Promise<{ status: string; input: string; above: string[] }> {
  const { lines } = await screen(cli)
  return { status: lines.at(-2) ?? '', input: (lines.at(-1) ?? '').trimEnd(), above: lines.slice(0, -2) }
}

describe('the chat view (the default on a terminal)', () => {
  test('the window narrowed twice: one status line and the typed text, no stale copy', async () => {
    const net = await setup()
    const cli = await chat(net)
    // Longer than the narrower windows: the terminal reflows it onto more rows. (Widening again is
    // left out: xterm.js, unlike tmux and most terminals, does not reflow the cursor's line.)
    const typed = Array.from({ length: 12 }, (_, i) => `typed${i}`).join(' ')
    await keys(cli, typed, 'typed11')
    const resizes: { at: number; cols: number }[] = []
    for (const cols of [60, 30]) {
      const at = cli.stdout.mark()
      resizes.push({ at, cols })
      cli.stdout.resize(cols)
      await cli.stdout.waitFor('typed11', { from: at })
      const { lines } = await renderScreen(cli.stdout.raw, COLS, ROWS, resizes)
      const rows = Math.ceil(`[everyone] › ${typed}`.length / cols)
      const status = lines.at(-rows - 1)
      expect(lines.filter((l) => l.startsWith(' alice · '))).toHaveLength(1)
      expect(status).toMatch(/^ alice · alice:\d+ · /)
      expect(lines.slice(-rows).join('')).toBe(`[everyone] › ${typed}`)
    }
  })

  test('a line typed and Enter goes to everyone; a message arriving mid-typing prints above, the typed text survives', async () => {
    const net = await setup(['bob', 'carol'])
    const [bob, carol] = [net.peer('bob'), net.peer('carol')]
    const [toBob, toCarol] = [inbox(bob), inbox(carol)]
    const cli = await chat(net)

    await keys(cli, 'half a thou', 'half a thou')
    const from = cli.stdout.mark()
    await bob.send(bob.peers().connected[0]!.id, 'interrupting!')
    await cli.stdout.waitFor('interrupting!', { from })
    let view = await bottom(cli)
    expect(view.above.at(-1)).toMatch(/^\d\d:\d\d:\d\d bob: interrupting!$/)
    expect(view.status).toMatch(/^ alice · alice:\d+ · 2 peers: (bob, carol|carol, bob) · no unread · \/help/)
    expect(view.input).toBe('[everyone] › half a thou')
    const { cursor, lines } = await screen(cli)
    expect(cursor).toEqual({ x: '[everyone] › half a thou'.length, y: lines.length - 1 })

    await keys(
      cli,
      `ght${KEY.enter}`,
      /✔ you → carol: half a thought[\s\S]*✔ you → bob: half a thought|✔ you → bob: half a thought[\s\S]*✔ you → carol: half a thought/,
    )
    await toBob.waitForCount(1)
    await toCarol.waitForCount(1)
    expect(toBob.texts()).toEqual(['half a thought'])
    expect(toCarol.texts()).toEqual(['half a thought'])
    view = await bottom(cli)
    expect(view.input).toBe('[everyone] ›')
    // What was typed is not left on screen twice: the delivery lines say what went out.
    expect(view.above.filter((l) => l.includes('half a thought'))).toHaveLength(2)
  })

  test('a pasted line far over the limit is refused at once, and the view goes on', async () => {
    const net = await setup()
    const cli = await chat(net)
    // Measuring 70,000 characters' width once took most of a minute (Intl.Segmenter past 65,536).
    await keys(cli, `${'x'.repeat(70_000)}\r`, /too long/)
    await keys(cli, 'still here', 'still here')
  })

  test('the terminal going away (EIO: window closed, SSH dropped) stops gracefully: goodbyes, exit 129', async () => {
    const net = await setup()
    const bob = net.peer('bob')
    const cli = await chat(net)
    const left = waitFor(bob, 'peer:disconnect')
    cli.stdout.emit('error', Object.assign(new Error('write EIO'), { code: 'EIO' }))
    expect(await cli.exited).toBe(129)
    expect((await left).reason).toBe('goodbye')
  })

  test('/to talks to one peer, /r answers the last sender, other peers count as unread', async () => {
    const net = await setup(['bob', 'carol'])
    const [bob, carol] = [net.peer('bob'), net.peer('carol')]
    const [toBob, toCarol] = [inbox(bob), inbox(carol)]
    const cli = await chat(net)

    await keys(cli, `/to bob${KEY.enter}`, '[bob] › ')
    await keys(cli, `just you${KEY.enter}`, /✔ you → bob: just you/)
    await toBob.waitForCount(1)

    const from = cli.stdout.mark()
    await carol.send(carol.peers().connected[0]!.id, 'psst')
    await cli.stdout.waitFor('carol: psst', { from })
    await cli.stdout.waitFor('1 unread (carol)', { from })

    await keys(cli, `/r and you${KEY.enter}`, /✔ you → carol: and you/)
    await toCarol.waitForCount(1)
    expect(toCarol.texts()).toEqual(['and you'])
    expect(toBob.texts()).toEqual(['just you'])
    const view = await bottom(cli)
    expect(view.input).toBe('[carol] ›')
    expect(view.status).toMatch(/no unread/)

    await keys(cli, `/to nobody${KEY.enter}`, 'no connected peer is called nobody')
    await keys(cli, `/to alice${KEY.enter}`, 'alice is you — /peers lists the others')
    await keys(
      cli,
      `/to zed hi${KEY.enter}`,
      /✖ no connected peer is called zed — \/peers lists them; nothing was sent/,
    )
    await keys(cli, `/to *${KEY.enter}`, '[everyone] › ')
    // `/to * text` picks everyone and sends the text, as `/to bob text` does for bob.
    await keys(cli, `/to bob${KEY.enter}`, '[bob] › ')
    await keys(cli, `/to * all of you${KEY.enter}`, '[everyone] › ')
    await toBob.waitForCount(2)
    await toCarol.waitForCount(2)
    expect(toCarol.texts()).toEqual(['and you', 'all of you'])
  })

  test('/r after the last sender left says so by name; nothing is sent and the conversation stays', async () => {
    const net = await setup(['bob', 'carol'])
    const bob = net.peer('bob')
    const cli = await chat(net)

    let from = cli.stdout.mark()
    await bob.send(bob.peers().connected[0]!.id, 'bye for now')
    await cli.stdout.waitFor('bob: bye for now', { from })
    from = cli.stdout.mark()
    await bob.stop()
    await cli.stdout.waitFor(/- bob left/, { from })

    from = cli.stdout.mark()
    await keys(cli, `/r are you there?${KEY.enter}`, /✖ bob has left; message not sent/)
    const said = stripVTControlCharacters(cli.stdout.raw.slice(from))
    expect(said).not.toContain(bob.id)
    expect(said).not.toMatch(/not delivered/)
    expect((await bottom(cli)).input).toBe('[everyone] ›')
  })

  test('a peer restarted with a new key under the same name: /to by name says which key is which and how to reach the new one', async () => {
    const net = await setup(['bob'])
    const bob = net.peer('bob')
    const cli = await chat(net)
    const aliceAddress = bob.peers().connected[0]!.listenAddrs[0]!
    let from = cli.stdout.mark()
    await bob.stop()
    await cli.stdout.waitFor(/- bob left/, { from })
    // No --data-dir: the restarted bob has a new key, and dials in.
    const again = createPeer({
      transport: memoryTransport(net.network, { host: 'bob2' }),
      name: 'bob',
      listen: 'bob2:0',
    })
    onTestFinished(() => again.stop())
    await again.start()
    from = cli.stdout.mark()
    await again.connect(aliceAddress)
    await cli.stdout.waitFor(/\+ bob/, { from })
    const newFp = fingerprint(again.id)
    await keys(
      cli,
      `/to bob are you there${KEY.enter}`,
      `bob is the peer ${fingerprint(bob.id)}, which is not connected; connected now and calling itself so: ${newFp} (/to ${newFp.slice(0, 9)}); nothing was sent`,
    )
    const got = inbox(again)
    await keys(cli, `/to ${newFp.slice(0, 9)} are you there${KEY.enter}`, /✔ you → bob.*: are you there/)
    expect((await got.waitForCount(1))[0]!.text).toBe('are you there')
  })

  test('two keys by one name (a peer restarted, and both dialed in): /to lists which is connected; the other is not connected', async () => {
    const net = await setup(['observer'])
    const observer = net.peer('observer')
    const cli = await chat(net)
    const aliceAddress = observer.peers().connected[0]!.listenAddrs[0]!
    const bobAt = (host: string) =>
      createPeer({ transport: memoryTransport(net.network, { host }), name: 'bob', listen: `${host}:0` })
    const first = bobAt('bob1')
    onTestFinished(() => first.stop())
    await first.start()
    let from = cli.stdout.mark()
    await first.connect(aliceAddress)
    await cli.stdout.waitFor(/\+ bob/, { from })
    from = cli.stdout.mark()
    await first.stop()
    await cli.stdout.waitFor(/- bob left/, { from })
    const again = bobAt('bob2')
    onTestFinished(() => again.stop())
    await again.start()
    from = cli.stdout.mark()
    await again.connect(aliceAddress)
    await cli.stdout.waitFor(/\+ bob/, { from })
    const [now, old] = [fingerprint(again.id), fingerprint(first.id)]
    await keys(
      cli,
      `/to bob hi${KEY.enter}`,
      `2 peers are called bob — pick one by fingerprint: /to ${now} (connected), /to ${old} (not connected); nothing was sent`,
    )
    await keys(cli, `/to ${old} hi${KEY.enter}`, `bob (${old}) is not connected — /connect bob1:`)
  })

  test('a peer whose mesh closed the session (a goodbye "mesh: …") has not left: /r does not say so', async () => {
    const net = await setup(['bob', 'carol'])
    const bob = net.peer('bob')
    const cli = await chat(net)
    let from = cli.stdout.mark()
    const aliceId = bob.peers().connected.find((p) => p.name === 'alice')!.id
    await bob.send(aliceId, 'hello')
    await cli.stdout.waitFor('bob: hello', { from })
    from = cli.stdout.mark()
    await bob.disconnect(aliceId, 'mesh: not a neighbour')
    await cli.stdout.waitFor(/- bob left/, { from })
    from = cli.stdout.mark()
    await keys(cli, `/r still there?${KEY.enter}`, /bob is not connected right now/)
    expect(stripVTControlCharacters(cli.stdout.raw.slice(from))).not.toMatch(/has left/)
  })

  test('a line to a conversation whose peer left says so by name, not by its id', async () => {
    const net = await setup(['bob', 'carol'])
    const bob = net.peer('bob')
    const cli = await chat(net)
    await keys(cli, `/to bob${KEY.enter}`, '[bob] › ')
    let from = cli.stdout.mark()
    await bob.stop()
    await cli.stdout.waitFor(/- bob left/, { from })

    from = cli.stdout.mark()
    await keys(cli, `anyone?${KEY.enter}`, /✖ bob has left; message not sent — \/to \* talks to everyone/)
    expect(stripVTControlCharacters(cli.stdout.raw.slice(from))).not.toContain(bob.id)
  })

  test('a line to a peer cut off and being reconnected says so at once, and goes once it is back', async () => {
    const net = await setup(['bob', 'carol'])
    const toBob = inbox(net.peer('bob'))
    const cli = await chat(net)
    await keys(cli, `/to bob${KEY.enter}`, '[bob] › ')
    let from = cli.stdout.mark()
    net.network.partition('alice', 'bob')
    net.network.dropConnections('bob')
    await cli.stdout.waitFor(/reconnecting to bob/, { from })
    from = cli.stdout.mark()
    await keys(
      cli,
      `still there?${KEY.enter}`,
      'bob is not connected right now: the line goes if it is back in time',
    )
    net.network.heal()
    await cli.stdout.waitFor(/✔ you → bob: still there\?/, { from })
    await toBob.waitForCount(1)
    expect(toBob.texts()).toEqual(['still there?'])
  })

  test('the line commands typed with a slash work: /send <peer> <text> sends (not a file), /connect-all connects', async () => {
    const net = await setup(['bob', 'carol'])
    const toBob = inbox(net.peer('bob'))
    const cli = await chat(net)

    await keys(cli, `/send bob hi there${KEY.enter}`, /✔ you → bob: hi there/)
    await toBob.waitForCount(1)
    expect(toBob.texts()).toEqual(['hi there'])
    expect((await bottom(cli)).input).toBe('[bob] ›')
    await keys(cli, `/connect-all${KEY.enter}`, 'no peers left to connect to')
    await keys(cli, `/connect nonsense${KEY.enter}`, /✖ "nonsense" is not host:port/)
  })

  test('a line pasted past the width of the terminal can be edited in place: no row is drawn twice', async () => {
    const net = await setup(['bob'])
    const cli = await chat(net)
    // One chunk, as a paste or a terminal multiplexer sends it: node:readline writes it without a redraw.
    const typed = 'd'.repeat(110)
    await keys(cli, typed, 'd'.repeat(50))
    cli.stdin.write('\x1b[D')
    await keys(cli, 'Z', 'Zd')
    await keys(cli, 'e', 'Zed')
    const { lines } = await screen(cli)
    const used = lines.filter((l) => l.trim() !== '')
    expect(used.filter((l) => l.startsWith('[everyone] ›'))).toHaveLength(1)
    expect(used.at(-3)).toMatch(/alice · alice:1 · 1 peer: bob/)
    expect(used.slice(-2).join('').replace('[everyone] › ', '')).toBe(`${'d'.repeat(109)}Zed`)
  })

  test('Tab completes commands and peer names; several candidates are listed above the input line', async () => {
    const net = await setup(['bob', 'carol', 'chris'])
    const cli = await chat(net)

    await keys(cli, `/he${TAB}`, 'lp')
    expect((await bottom(cli)).input).toBe('[everyone] › /help')
    await keys(cli, KEY.enter, '/to <name>')
    const help = (await screen(cli)).lines.join('\n')
    for (const command of ['/to', '/r', '/peers', '/connect', '/all', '/files', '/trust', '/menu', '/quit'])
      expect(help).toContain(`  ${command}`)

    // A completed name ends with a space, as a command does: the text (or a path) comes next.
    await keys(cli, `/to b${TAB}`, 'ob')
    await keys(cli, 'hi', 'i')
    expect((await bottom(cli)).input).toBe('[everyone] › /to bob hi')
    await keys(cli, `${KEY.backspace.repeat(6)}c${TAB}`, /carol +chris/)
    let view = await bottom(cli)
    expect(view.above.at(-1)?.trimEnd()).toMatch(/^carol +chris$/)
    expect(view.input).toBe('[everyone] › /to c')
    // Tab again on the same line: the list is on screen already, not printed twice.
    cli.stdin.write(TAB)
    await keys(cli, `h${TAB}`, 'ris')
    await keys(cli, 'x', 'x')
    view = await bottom(cli)
    expect(view.input).toBe('[everyone] › /to chris x')
    expect(view.above.filter((l) => /^carol +chris$/.test(l.trimEnd()))).toHaveLength(1)
  })

  test('Ctrl+L clears the screen and draws the status line again above the input line', async () => {
    const net = await setup()
    const cli = await chat(net)
    await keys(cli, 'half typed', 'half typed')
    const from = cli.stdout.mark()
    cli.stdin.write('\x0c')
    await cli.stdout.waitFor(/ alice · [\s\S]*half typed/, { from })
    const { lines } = await screen(cli)
    expect(lines.slice(-2)[0]).toMatch(/^ alice · alice:\d+ · 1 peer: bob/)
    expect(lines.at(-1)?.trimEnd()).toBe('[everyone] › half typed')
  })

  test('namesakes get a fingerprint, a long message is folded and /show prints it whole', async () => {
    const net = await setup(['bob', 'bob'])
    const cli = await chat(net)
    const status = (await bottom(cli)).status
    expect(status).toMatch(new RegExp(`2 peers: bob \\(${FP}\\), bob \\(${FP}\\)`))

    const long = Array.from({ length: 40 }, (_, i) => `line ${i + 1} of a long paste`).join('\n')
    const [first] = net.peers
    const from = cli.stdout.mark()
    await first!.send(first!.peers().connected[0]!.id, long)
    await cli.stdout.waitFor(/\[folded #1: \d+ characters, 40 lines — \/show 1 shows it whole\]/, { from })
    const shown = stripVTControlCharacters(cli.stdout.raw.slice(from))
    expect(shown).toMatch(new RegExp(`bob \\(${FP}\\): line 1 of a long paste`))
    expect(shown).not.toContain('line 40 of')

    await keys(cli, `/show 1${KEY.enter}`, 'line 40 of a long paste')
    // Whole, under a header and indented: no line of it starts at the left edge, where it could pass
    // for another peer's message.
    const rows = (await screen(cli)).lines
    expect(rows.some((r) => r.startsWith('folded #1: line 1 of a long paste'))).toBe(true)
    expect(rows.filter((r) => /^line \d+ of a long paste/.test(r))).toEqual([])
    expect(rows.some((r) => /^\s+line 40 of a long paste/.test(r))).toBe(true)
    await keys(cli, `/show 7${KEY.enter}`, 'no folded message #7')
  })

  test('placeholders, unknown commands and /menu (and back) say what they do', async () => {
    const net = await setup()
    const cli = await chat(net)
    await keys(
      cli,
      `/files${KEY.enter}`,
      'no offers or transfers open — /send-file <peer> <path> offers a file',
    )
    await keys(cli, `/accept${KEY.enter}`, 'no offer is waiting')
    await keys(cli, `/trust${KEY.enter}`, 'no key changes are waiting for a decision')
    await keys(cli, `/bogus${KEY.enter}`, 'unknown command /bogus — /help lists the commands')
    await keys(cli, `/menu${KEY.enter}`, '9) Back to the chat view')
    await keys(cli, `9${KEY.enter}`, '[everyone] › ')
    await keys(cli, `hi${KEY.enter}`, /✔ you → bob: hi/)
  })

  test('Ctrl+C leaves like /quit: goodbye to every peer, exit 0, cursor on a fresh line', async () => {
    const net = await setup()
    const bob = net.peer('bob')
    const cli = await chat(net)
    await keys(cli, 'unsent', 'unsent')
    const left = waitFor(bob, 'peer:disconnect')
    cli.stdin.write(KEY.ctrlC)
    expect(await cli.exited).toBe(0)
    expect((await left).reason).toBe('goodbye')
    expect(cli.stdout.text).toMatch(/stopped; said goodbye to every peer/)
    const { lines } = await screen(cli)
    expect(lines.at(-1)).toMatch(/stopped; said goodbye/)

    const net2 = await setup()
    const again = await chat(net2)
    await keys(again, `/quit${KEY.enter}`, 'stopped')
    expect(await again.exited).toBe(0)
  })

  test('SIGTERM while typing closes the view, says goodbye and exits 143', async () => {
    const net = await setup()
    const cli = await chat(net)
    await keys(cli, 'typing', 'typing')
    cli.signals.emit('SIGTERM')
    expect(await cli.exited).toBe(143)
    expect(cli.stdout.text).toMatch(/stopped \(exit 143\)/)
  })
})
