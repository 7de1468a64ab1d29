import { createPeer, memoryTransport } from '@parley/core'
import { createMeshPeer } from '@parley/mesh'
import { createTestNetwork, inbox, waitFor } from '@parley/testing'
import { describe, expect, onTestFinished, test } from 'vitest'
import { startCli } from './helpers/cli.js'

const FP = '[0-9a-f]{4}(?::[0-9a-f]{4}){3}'

async function setup(names: string[] = ['bob']) {
  const net = await createTestNetwork({ size: names.length, names })
  onTestFinished(() => net.stop())
  return net
}

function cliOn(
  net: Awaited<ReturnType<typeof setup>>,
  name: string,
  extra: string[] = [],
  env: Record<string, string> = {},
) {
  return startCli(['--no-interactive', '--name', name, '--host', name, '--port', '0', ...extra], {
    network: net.network,
    env,
  })
}

describe('non-interactive mode (stdin commands, stdout lines)', () => {
  test('send <address> <text> delivers; an incoming message prints one line', async () => {
    const net = await setup()
    const bob = net.peer('bob')
    const bobInbox = inbox(bob)
    const alice = cliOn(net, 'alice')
    await alice.address()

    alice.line(`send ${net.address(bob)} hello bob`)
    await bobInbox.waitForCount(1)
    expect(bobInbox.texts()).toEqual(['hello bob'])
    await alice.stdout.waitFor(new RegExp(`✔ you → bob \\(${FP}\\): hello bob`))

    const aliceId = bob.peers().connected[0]!.id
    await bob.send(aliceId, 'hi alice')
    await alice.stdout.waitFor(new RegExp(`^\\d\\d:\\d\\d:\\d\\d bob \\(${FP}\\): hi alice$`, 'm'))
  })

  test('two CLI peers: --peer connects at start, send by name, the receiver prints it', async () => {
    const net = await setup(['observer'])
    const alice = cliOn(net, 'alice')
    const aliceAddress = await alice.address()
    const carol = cliOn(net, 'carol', ['--peer', aliceAddress])
    await carol.stdout.waitFor(/✔ connected to alice/)
    await alice.stdout.waitFor(/\+ carol \(.*\) joined \(inbound/)

    carol.line('send alice hello from carol')
    await alice.stdout.waitFor(new RegExp(`carol \\(${FP}\\): hello from carol`))
    // \n in the text is a line break; continuation lines are indented under the first.
    carol.line('send alice one\\ntwo')
    const m = await alice.stdout.waitFor(/carol \(.*\): one\n(\s+)two/)
    expect(m[1]!.length).toBeGreaterThan(10)
  })

  test('a --peer not up yet is dialed again with backoff; piped commands wait for it', async () => {
    const net = await setup(['observer'])
    const cli = startCli(
      ['--no-interactive', '--name', 'alice', '--host', 'alice', '--port', '0', '--peer', 'late:9'],
      {
        network: net.network,
        peerRetry: { initialDelay: 20, maxDelay: 40, maxAttempts: 200 },
      },
    )
    await cli.address()
    cli.line('send late first words')
    await cli.stderr.waitFor(/could not connect to late:9: .* \(trying again in 1s\)/)

    const late = createPeer({ transport: memoryTransport(net.network), name: 'late', listen: 'late:9' })
    onTestFinished(() => late.stop())
    const got = inbox(late)
    await late.start()
    await cli.stdout.waitFor(/✔ connected to late .* at late:9/)
    await got.waitForCount(1)
    expect(got.texts()).toEqual(['first words'])
    expect(cli.stderr.text).not.toMatch(/not delivered/)
    // Every retry waited under a second: one line announced it.
    expect(cli.stderr.text.match(/trying again in 1s/g)).toHaveLength(1)
  })

  test('a --peer that never comes up: commands run after the wait, with one clear sentence', async () => {
    const net = await setup(['observer'])
    const cli = startCli(
      ['--no-interactive', '--name', 'alice', '--host', 'alice', '--port', '0', '--peer', 'nobody:9'],
      {
        network: net.network,
        peerRetry: { initialDelay: 20, maxDelay: 40, maxAttempts: 1_000 },
        peerWait: 300,
      },
    )
    await cli.address()
    cli.line('send nobody hello?')
    await cli.stderr.waitFor('not connected to nobody:9 after 0.3 s — running the commands anyway')
    await cli.stderr.waitFor(/not delivered to nobody: no connected peer matches "nobody"/)
  })

  test('a peer that said goodbye is listed as gone, and connect-all sums it up in one line', async () => {
    const net = await setup(['bob'])
    const bob = net.peer('bob')
    const cli = cliOn(net, 'alice', ['--peer', net.address(bob)])
    await cli.stdout.waitFor(/✔ connected to bob/)
    await bob.stop()
    await cli.stdout.waitFor(/- bob .* left: said goodbye/)

    cli.line('peers')
    await cli.stdout.waitFor(/known, not connected \(1\)\n.*\n\s+bob\s+\S+\s+\S+\s+gone now/)
    cli.line('connect-all')
    // A peer that said goodbye is not dialed again (core's peer store marks it gone).
    await cli.stdout.waitFor(
      'no peers left to connect to: every peer this one knows of is connected or has left',
    )
    expect(cli.stderr.text).not.toMatch(/could not connect to bob/)
  })

  test('peers prints connected peers as a table, then known-but-not-connected ones', async () => {
    const net = await setup(['bob', 'carol'])
    await net.connect(net.peer('bob'), net.peer('carol'))
    const alice = cliOn(net, 'alice', ['--peer', net.address(net.peer('bob'))])
    await alice.stdout.waitFor(/✔ connected to bob/)

    const from = alice.stdout.mark()
    alice.line('peers')
    await alice.stdout.waitFor(/known, not connected \(1\)\n.*\n.*carol/, { from })
    const text = alice.stdout.text.slice(alice.stdout.text.indexOf('connected peers (1)'))
    expect(text).toMatch(/name\s+fingerprint\s+address\s+direction\s+connected since\s+last seen\s+in\s+out/)
    expect(text).toMatch(
      new RegExp(`bob\\s+${FP}\\s+bob:\\d+\\s+outbound\\s+\\d\\d:\\d\\d:\\d\\d\\s+\\S+( ago)?\\s+0\\s+0`),
    )
  })

  test('connect-all connects to every peer learned by exchange, one line per peer', async () => {
    const net = await setup(['bob', 'carol', 'dave'])
    await net.star() // carol and dave know bob, bob knows both
    const alice = cliOn(net, 'alice', ['--peer', net.address(net.peer('bob'))])
    await alice.stdout.waitFor(/✔ connected to bob/)

    const from = alice.stdout.mark()
    alice.line('connect-all')
    await alice.stdout.waitFor(
      /✔ connected to carol[\s\S]*✔ connected to dave|✔ connected to dave[\s\S]*✔ connected to carol/,
      {
        from,
      },
    )
    expect(
      net
        .peer('carol')
        .peers()
        .connected.map((p) => p.name),
    ).toContain('alice')
    expect(
      net
        .peer('dave')
        .peers()
        .connected.map((p) => p.name),
    ).toContain('alice')

    const again = alice.stdout.mark()
    alice.line('connect-all')
    await alice.stdout.waitFor(/no peers left to connect to/, { from: again })
  })

  test('a connection the user dialed is one line: --peer, connect and connect-all say "connected to", not also "joined"', async () => {
    const net = await setup(['bob', 'carol', 'dave'])
    await net.star() // bob knows carol and dave
    const alice = cliOn(net, 'alice', ['--peer', net.address(net.peer('bob'))])
    await alice.stdout.waitFor(/✔ connected to bob/)
    alice.line(`connect ${net.address(net.peer('carol'))}`)
    await alice.stdout.waitFor(/✔ connected to carol/)
    alice.line('connect-all')
    await alice.stdout.waitFor(/✔ connected to dave/)
    alice.line('quit')
    expect(await alice.exited).toBe(0)
    const lines = alice.stdout.text.split('\n')
    for (const who of ['bob', 'carol', 'dave']) {
      expect(lines.filter((l) => l.includes(` ${who} (`) && /joined|connected to/.test(l))).toEqual([
        expect.stringMatching(new RegExp(`✔ connected to ${who} \\(${FP}\\) at `)),
      ])
    }
  })

  test('broadcast reaches every connected peer and reports each', async () => {
    const net = await setup(['bob', 'carol'])
    const inboxes = net.peers.map((p) => inbox(p))
    const alice = cliOn(net, 'alice')
    await alice.address()
    alice.line(`connect ${net.address(net.peer('bob'))}`)
    alice.line(`connect ${net.address(net.peer('carol'))}`)
    await alice.stdout.waitFor(/connected to carol/)
    await alice.stdout.waitFor(/connected to bob/)

    alice.line('broadcast hi all')
    await Promise.all(inboxes.map((i) => i.waitForCount(1)))
    expect(inboxes.map((i) => i.texts())).toEqual([['hi all'], ['hi all']])
    await alice.stdout.waitFor(/✔ you → (bob|carol).*hi all[\s\S]*✔ you → (bob|carol).*hi all/)
  })

  test('quit says goodbye to every peer and exits 0', async () => {
    const net = await setup()
    const bob = net.peer('bob')
    const alice = cliOn(net, 'alice', ['--peer', net.address(bob)])
    await alice.stdout.waitFor(/connected to bob/)
    const left = waitFor(bob, 'peer:disconnect')
    alice.line('quit')
    expect(await alice.exited).toBe(0)
    const event = await left
    expect(event.reason).toBe('goodbye')
    expect(alice.stdout.text).toMatch(/stopped; said goodbye to every peer/)
  })

  test('commands after quit are ignored; quit waits for the sends before it', async () => {
    const net = await setup()
    const bob = net.peer('bob')
    const got = inbox(bob)
    const alice = cliOn(net, 'alice')
    await alice.address()
    alice.stdin.write(`send ${net.address(bob)} first\nquit\nsend bob never\n`)
    expect(await alice.exited).toBe(0)
    expect(got.texts()).toEqual(['first'])
  })

  test('errors are one sentence on stderr, no stack, and the peer keeps running', async () => {
    const net = await setup()
    const alice = cliOn(net, 'alice')
    const address = await alice.address()
    const lines = [
      'send nobody hi',
      'connect nohost:9',
      'connect foo',
      'connect bob:0',
      `send ${net.address(net.peer('bob'))} ${'x'.repeat(70_000)}`,
      'frobnicate',
      'send',
    ]
    for (const l of lines) alice.line(l)
    await alice.stderr.waitFor(/usage: send <peer> <text>/)
    const errors = alice.stderr.lines()
    expect(errors).toHaveLength(lines.length)
    expect(errors[0]).toMatch(/✖ not delivered to nobody: no connected peer matches "nobody"/)
    expect(errors[1]).toMatch(/could not connect to nohost:9: nohost:9 refused the connection/)
    expect(errors[2]).toMatch(/"foo" is not host:port/)
    expect(errors[3]).toMatch(/port in "bob:0" must be a whole number from 1 to 65535/)
    expect(errors[4]).toMatch(/the message is too long — the limit is 65535 bytes/)
    expect(errors[5]).toMatch(/unknown command "frobnicate"/)
    for (const e of errors) expect(e).not.toMatch(/^\s+at /m)
    expect(alice.stderr.text).not.toMatch(/Error:|\n\s+at /)

    // Still alive: a message still arrives.
    await net.peer('bob').send(address, 'still there?')
    await alice.stdout.waitFor(/bob \(.*\): still there\?/)
  })

  test('--debug adds the stack trace to an unexpected error', async () => {
    const net = await setup()
    const alice = cliOn(net, 'alice', ['--debug'])
    await alice.address()
    alice.line('connect nohost:9')
    await alice.stderr.waitFor(/refused the connection[\s\S]*\n\s+at /)
  })

  test('end of stdin keeps the peer running until a signal (daemon mode); SIGTERM exits 143', async () => {
    const net = await setup()
    const bob = net.peer('bob')
    const alice = cliOn(net, 'alice')
    const address = await alice.address()
    alice.stdin.end()
    await bob.send(address, 'are you up?')
    await alice.stdout.waitFor(/are you up\?/)
    const left = waitFor(bob, 'peer:disconnect')
    alice.signals.emit('SIGTERM')
    expect(await alice.exited).toBe(143)
    expect((await left).reason).toBe('goodbye')
  })

  test('a reader that leaves the pipe (`| head`: EPIPE) stops the peer gracefully: goodbyes, exit 141', async () => {
    const net = await setup()
    const bob = net.peer('bob')
    const alice = cliOn(net, 'alice', ['--peer', net.address(bob)])
    await alice.stdout.waitFor(/connected to bob/)
    const left = waitFor(bob, 'peer:disconnect')
    const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })
    alice.stdout.emit('error', epipe)
    // Later writes fail too: still one stop, not a crash.
    alice.stdout.emit('error', epipe)
    expect(await alice.exited).toBe(141)
    expect((await left).reason).toBe('goodbye')
  })

  test('SIGINT exits 130; a second one during shutdown is ignored: the stop goes on and says so', async () => {
    const net = await setup()
    const bob = net.peer('bob')
    const alice = cliOn(net, 'alice', ['--peer', net.address(bob)])
    await alice.stdout.waitFor(/connected to bob/)
    const left = waitFor(bob, 'peer:disconnect')
    alice.signals.emit('SIGINT')
    alice.signals.emit('SIGINT')
    expect(await alice.exited).toBe(130)
    expect(alice.forcedExits).toEqual([])
    expect(alice.stdout.text).toMatch(/still stopping — SIGINT once more exits at once/)
    expect(alice.stdout.text).toMatch(/stopped \(exit 130\); said goodbye to every peer/)
    expect((await left).reason).toBe('goodbye')
  })

  test('broadcast also reaches, through the mesh, a peer this one is not connected to', async () => {
    const net = await setup([])
    const mesh = (name: string) => {
      const peer = createMeshPeer({
        transport: memoryTransport(net.network, { host: name }),
        listen: `${name}:0`,
        name,
      })
      onTestFinished(() => peer.stop())
      return peer
    }
    const bob = mesh('bob')
    const carol = mesh('carol')
    await bob.start()
    await carol.start()
    await carol.connect(bob.addresses[0]!)
    const carolInbox = inbox(carol)
    const alice = cliOn(net, 'alice', ['--peer', bob.addresses[0]!])
    await alice.stdout.waitFor(/connected to bob/)
    alice.line('broadcast hello, whole mesh')
    await alice.stdout.waitFor(/✔ you → bob \(.*\): hello, whole mesh/)
    const [got] = await carolInbox.waitForCount(1)
    expect(got!.text).toBe('hello, whole mesh')
    const aliceId = bob.peers().connected.find((p) => p.name === 'alice')!.id
    expect(got!.from.id).toBe(aliceId)
    expect(carol.peers().connected.map((p) => p.id)).not.toContain(aliceId)
  })

  test('quitting with no peer connected says so, rather than that every peer was told', async () => {
    const net = await setup()
    const alice = cliOn(net, 'alice')
    await alice.address()
    alice.line('quit')
    expect(await alice.exited).toBe(0)
    expect(alice.stdout.text).toMatch(/stopped; no peer was connected/)
    expect(alice.stdout.text).not.toMatch(/said goodbye/)
  })

  test('started by pnpm, a Ctrl+C that arrives twice (the terminal’s and pnpm’s copy) is one Ctrl+C', async () => {
    const net = await setup()
    const bob = net.peer('bob')
    const alice = cliOn(net, 'alice', ['--peer', net.address(bob)], { npm_config_user_agent: 'pnpm/10.34.9' })
    await alice.stdout.waitFor(/connected to bob/)
    const left = waitFor(bob, 'peer:disconnect')
    // Copies within a moment of each other are one press: the stop goes on, with no note and no force.
    for (let i = 0; i < 4; i++) alice.signals.emit('SIGINT')
    expect(await alice.exited).toBe(130)
    expect(alice.forcedExits).toEqual([])
    expect(alice.stdout.text).not.toMatch(/once more/)
    expect((await left).reason).toBe('goodbye')
  })

  test('a third SIGINT during shutdown forces the exit', async () => {
    const net = await setup()
    const alice = cliOn(net, 'alice', ['--peer', net.address(net.peer('bob'))])
    await alice.stdout.waitFor(/connected to bob/)
    alice.signals.emit('SIGINT')
    alice.signals.emit('SIGINT')
    alice.signals.emit('SIGINT')
    expect(alice.forcedExits).toEqual([130])
    expect(await alice.exited).toBe(130)
  })

  test('--json emits parseable NDJSON for events, results and errors', async () => {
    const net = await setup()
    const bob = net.peer('bob')
    const alice = startCli(
      ['--no-interactive', '--json', '--name', 'alice', '--host', 'alice', '--port', '0'],
      {
        network: net.network,
      },
    )
    await alice.stdout.waitFor(/"type":"ready"/)
    alice.line(`send ${net.address(bob)} hello`)
    await alice.stdout.waitFor(/"type":"delivered"/)
    await bob.send(bob.peers().connected[0]!.id, 'hi back')
    await alice.stdout.waitFor(/"type":"message"/)
    alice.line('send nobody x')
    alice.line('bogus')
    alice.line('peers')
    await alice.stdout.waitFor(/"type":"peers"/)
    alice.line('quit')
    expect(await alice.exited).toBe(0)

    const events = alice.stdout.raw
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { type: string; time: string; [k: string]: unknown })
    const types = events.map((e) => e.type)
    expect(types[0]).toBe('ready')
    expect(types).toEqual(
      expect.arrayContaining([
        'peer:connect',
        'delivered',
        'message',
        'not-delivered',
        'error',
        'peers',
        'stopped',
      ]),
    )
    for (const e of events) expect(Number.isNaN(Date.parse(e.time))).toBe(false)
    const message = events.find((e) => e.type === 'message') as unknown as {
      from: { name: string }
      text: string
    }
    expect(message.from.name).toBe('bob')
    expect(message.text).toBe('hi back')
    const failed = events.find((e) => e.type === 'not-delivered')!
    expect(failed.code).toBe('NOT_CONNECTED')
    expect(alice.stderr.raw).toBe('')
  })
})

describe('security flags', () => {
  test('peers on different --network-secret values cannot connect, and say why', async () => {
    const net = await setup(['observer'])
    const alice = cliOn(net, 'alice', ['--network-secret', 'apples'])
    const aliceAddress = await alice.address()
    const carol = cliOn(net, 'carol', ['--network-secret', 'oranges', '--peer', aliceAddress])
    await carol.stderr.waitFor(/network secret/)
    const dave = cliOn(net, 'dave', ['--network-secret', 'apples', '--peer', aliceAddress])
    await dave.stdout.waitFor(/✔ connected to alice/)
  })

  test('--deny refuses a peer by id before any message is exchanged', async () => {
    const net = await setup(['bob'])
    const bob = net.peer('bob')
    const alice = cliOn(net, 'alice', ['--deny', bob.id])
    const aliceAddress = await alice.address()
    await expect(bob.connect(aliceAddress)).rejects.toMatchObject({ code: 'DENIED' })
    expect(bob.peers().connected).toEqual([])
  })
})
