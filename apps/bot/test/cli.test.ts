import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import { createPeer, memoryNetwork, memoryTransport } from '@parley/core'
import { createTestNetwork, waitFor } from '@parley/testing'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { createBot, ExitCode, echo, handleSignals, runCli } from '../src/index.js'
import { captureIO, tempFiles, yaml } from './helpers.js'

async function withAlice() {
  const net = await createTestNetwork({ size: 1, names: ['alice'] })
  onTestFinished(() => net.stop())
  const alice = net.peers[0]!
  echo(createBot(alice))
  return {
    alice,
    address: net.address(alice),
    transport: () => memoryTransport(net.network, { host: 'cli' }),
  }
}

describe('bot script', () => {
  it('exits 0 when the script passes and 1 when an assertion fails, with one sentence on stderr', async () => {
    const { address, transport } = await withAlice()
    const dir = await tempFiles({
      'pass.yaml': yaml(
        'steps:',
        '  - connect: "{{alice}}"',
        '  - send: { to: alice, text: hi }',
        '  - assert: { peers: 1 }',
      ),
      'fail.yaml': yaml('steps:', '  - connect: "{{alice}}"', '  - assert: { names: bob }'),
    })

    const ok = captureIO({ transport })
    expect(await runCli(['script', join(dir, 'pass.yaml'), '--var', `alice=${address}`], ok)).toBe(
      ExitCode.OK,
    )
    expect(ok.out()).toMatch(/^script passed: 3 steps in \d+ ms$/m)
    expect(ok.err()).toBe('')

    const failed = captureIO({ transport })
    expect(await runCli(['script', join(dir, 'fail.yaml'), '--var', `alice=${address}`], failed)).toBe(
      ExitCode.FAILED,
    )
    expect(failed.err()).toBe(
      `${join(dir, 'fail.yaml')} line 3: steps[1].assert failed: expected bob to be connected (connected: alice)\n`,
    )
  })

  it('exits 2 on an invalid script, printing every problem, and on a missing file', async () => {
    const dir = await tempFiles({ 'bad.yaml': yaml('steps:', '  - send: { to: bob }', '  - wiat: 5') })
    const io = captureIO()
    expect(await runCli(['script', join(dir, 'bad.yaml')], io)).toBe(ExitCode.USAGE)
    expect(io.err()).toBe(
      `${join(dir, 'bad.yaml')} line 2: steps[0].send.text is required\n` +
        `${join(dir, 'bad.yaml')} line 3: steps[1] has unknown step "wiat" (did you mean "wait"?)\n`,
    )

    const missing = captureIO()
    expect(await runCli(['script', join(dir, 'nope.yaml')], missing)).toBe(ExitCode.USAGE)
    expect(missing.err()).toBe(`bot: cannot read ${join(dir, 'nope.yaml')}: there is no such file\n`)
  })

  it('stops gracefully on SIGINT/SIGTERM with exit code 130/143', async () => {
    const { alice, address, transport } = await withAlice()
    const dir = await tempFiles({
      'long.yaml': yaml('steps:', '  - connect: "{{alice}}"', '  - wait: { message: never }'),
    })
    for (const [reason, code] of [
      ['SIGINT', ExitCode.SIGINT],
      ['SIGTERM', ExitCode.SIGTERM],
    ] as const) {
      const controller = new AbortController()
      const io = captureIO({ transport, signal: controller.signal })
      const running = runCli(['script', join(dir, 'long.yaml'), '--var', `alice=${address}`], io)
      await io.printed('connected to alice') // the script now waits for a message that never comes
      const left = waitFor(alice, 'peer:disconnect')
      controller.abort(reason)
      expect(await running).toBe(code)
      expect((await left).reason).toBe('goodbye')
      expect(io.err()).toBe('')
    }
  })
})

describe('bot run', () => {
  it('runs a behaviour until stopped, printing what happens', async () => {
    const { alice, address, transport } = await withAlice()
    const controller = new AbortController()
    const io = captureIO({ transport, signal: controller.signal })
    const welcomed = waitFor(alice, 'message', (m) => m.text === 'welcome, alice!')
    const running = runCli(
      ['--', 'run', 'greeter', '--name', 'doorman', '--host', 'doorman', '--peer', address],
      io,
    )
    await welcomed
    controller.abort('SIGTERM')
    expect(await running).toBe(ExitCode.SIGTERM)
    expect(io.out()).toMatch(/^doorman \(\w{4}(?::\w{4}){3}\) listening on doorman:\d+, behaviour greeter$/m)
    expect(io.out()).toContain('+ alice (')
    expect(io.out()).toContain('→ alice: welcome, alice!')
  })

  it("prints what peers send as single lines without controls: a peer's escape or newline cannot drive the terminal", async () => {
    const { alice, address, transport } = await withAlice()
    const controller = new AbortController()
    const io = captureIO({ transport, signal: controller.signal })
    const running = runCli(['run', 'echo', '--name', 'bot', '--host', 'bot', '--peer', address], io)
    await waitFor(alice, 'peer:connect')
    const echoed = waitFor(alice, 'message')
    await alice.send(alice.peers().connected[0]!.id, 'hi\x1b]0;PWNED\x07\x1b[2J\n+ mallory joined\u202e')
    await echoed
    controller.abort('SIGTERM')
    expect(await running).toBe(ExitCode.SIGTERM)
    expect(io.out()).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]/)
    expect(io.out()).toContain('← alice: hi]0;PWNED[2J + mallory joined\n')
    expect(io.out()).not.toMatch(/^\+ mallory/m)
  })

  it('ends chatter after --count messages with exit 0', async () => {
    const { alice, address, transport } = await withAlice()
    const io = captureIO({ transport })
    const code = await runCli(
      [
        'run',
        'chatter',
        '--host',
        'chatty',
        '--peer',
        address,
        '--to',
        'alice',
        '--interval',
        '1',
        '--count',
        '2',
      ],
      io,
    )
    expect(code).toBe(ExitCode.OK)
    expect(alice.peers().connected).toEqual([])
    expect(io.out()).toContain('← alice: echo: chatter 2 from chatter-bot')
  })

  it('dials a --peer again until it is up: a bot may start before the peer it dials', async () => {
    const network = memoryNetwork()
    const controller = new AbortController()
    const io = captureIO({
      transport: () => memoryTransport(network, { host: 'bot' }),
      signal: controller.signal,
      peerRetry: { initialDelay: 20, maxDelay: 40, maxAttempts: 50 },
    })
    const code = runCli(['run', 'echo', '--host', 'bot', '--peer', 'late:7'], io)
    await vi.waitFor(() => expect(io.err()).toMatch(/^bot: could not reach late:7: .+; trying again/))
    const late = createPeer({
      transport: memoryTransport(network, { host: 'late' }),
      name: 'late',
      listen: 'late:7',
    })
    onTestFinished(() => late.stop())
    await late.start()
    await vi.waitFor(() => expect(late.peers().connected.map((p) => p.name)).toEqual(['echo-bot']))
    controller.abort('SIGTERM')
    expect(await code).toBe(ExitCode.SIGTERM)
  })

  it('a chatter whose --peer never comes up exits 1, saying so', async () => {
    const io = captureIO({
      transport: () => memoryTransport(memoryNetwork(), { host: 'bot' }),
      peerRetry: { initialDelay: 5, maxDelay: 5, maxAttempts: 3 },
    })
    expect(await runCli(['run', 'chatter', '--host', 'bot', '--peer', 'nowhere:1'], io)).toBe(ExitCode.FAILED)
    expect(io.err()).toMatch(
      /gave up after 3 tries\)\n.*no --peer could be reached: chatter has no one to talk to\n$/s,
    )
  })

  it('prints one sentence and keeps running when a --peer cannot be reached', async () => {
    const { transport } = await withAlice()
    const controller = new AbortController()
    const io = captureIO({ transport, signal: controller.signal })
    const code = runCli(['run', 'echo', '--host', 'lonely', '--peer', 'nowhere:1', '--duration', '20'], io)
    expect(await code).toBe(ExitCode.OK)
    expect(io.err()).toMatch(/^bot: could not reach nowhere:1: .+\n$/)
  })
})

describe('bot swarm', () => {
  it('prints a JSON summary', async () => {
    const io = captureIO()
    const args = ['swarm', '--memory', '--count', '5', '--topology', 'mesh', '--behaviour', 'echo', '--json']
    expect(await runCli(args, io)).toBe(ExitCode.OK)
    const summary = JSON.parse(io.out())
    expect(summary).toMatchObject({
      bots: 5,
      topology: 'mesh',
      transport: 'memory',
      links: 10,
      messages: { sent: 40, delivered: 40, failed: 0, received: 40 },
      endedBy: 'settled',
    })
  })

  it('--count alone runs an echo swarm and shows progress on stderr while it runs', async () => {
    const io = captureIO()
    expect(await runCli(['swarm', '--memory', '--count', '20'], io)).toBe(ExitCode.OK)
    expect(io.out()).toContain('swarm: 20 bots, ring (20 links) over memory, behaviour echo')
    expect(io.err()).toMatch(/^starting 20 bots \(ring\)…\n20 bots up, 20 links wired in \d+ ms\n/)
  })

  it('prints a plain summary and exits 1 when a bot script fails', async () => {
    const dir = await tempFiles({ 'two.yaml': yaml('steps:', '  - assert: { peers: 2 }') })
    const io = captureIO()
    const args = [
      'swarm',
      '--memory',
      '--count',
      '3',
      '--topology',
      'star',
      '--script',
      join(dir, 'two.yaml'),
    ]
    expect(await runCli(args, io)).toBe(ExitCode.FAILED)
    const out = io.out()
    expect(out).toContain('swarm: 3 bots, star (2 links) over memory, script ')
    expect(out).toContain('messages: 0 sent, 0 delivered, 0 failed, 0 received')
    expect(out).toContain('peers seen per bot: min 1, max 2, mean 1.33')
    expect(out).toContain('scripts: 1 passed, 2 failed, 0 unfinished')
    expect(out).toContain(
      `  bot-1: ${join(dir, 'two.yaml')} line 2: steps[0].assert failed: expected 2 connected peers, found 1 (bot-0)`,
    )
    expect(out).toMatch(/^elapsed: \d+ ms \(work done\)$/m)
  })
})

describe('usage errors', () => {
  it.each([
    [
      ['swarm', '--memory', '--behaviour', 'echo', '--script', 'x.yaml'],
      'bot: give the swarm either --behaviour or --script, not both\n',
    ],
    [
      ['run', 'dance'],
      "bot: command-argument value 'dance' is invalid for argument 'behaviour'. Allowed choices are echo, greeter, chatter, relay. — --help lists the commands and flags\n",
    ],
    [
      ['run', 'echo', '--port', 'abc'],
      "bot: option '-p, --port <n>' argument 'abc' is invalid. The port must be a whole number from 0 to 65535. — --help lists the commands and flags\n",
    ],
    [
      ['swarm', '--count', '10001', '--behaviour', 'echo'],
      "bot: option '--count <n>' argument '10001' is invalid. The count must be a whole number from 1 to 10000. — --help lists the commands and flags\n",
    ],
    [['fly'], "bot: unknown command 'fly' — --help lists the commands and flags\n"],
    [
      ['run', 'echo', '--peer', 'nope'],
      expect.stringMatching(/^bot: --peer nope is not an address: .*port\n$/),
    ],
    [
      ['run', 'echo', '--peer', '127.0.0.1:0'],
      'bot: --peer 127.0.0.1:0 is not an address: port 0 cannot be dialed\n',
    ],
    [['run', 'echo', '--prefix', ''], 'bot: the echo prefix must not be empty\n'],
  ])('%j exits 2 with one sentence', async (args, message) => {
    const io = captureIO()
    expect(await runCli(args, io)).toBe(ExitCode.USAGE)
    expect(io.err()).toEqual(message)
    expect(io.out()).toBe('')
  })

  it('prints help and the version with exit 0', async () => {
    const help = captureIO()
    expect(await runCli(['--help'], help)).toBe(ExitCode.OK)
    expect(help.out()).toContain('Usage: bot [options] [command]')
    const version = captureIO()
    expect(await runCli(['--version'], version)).toBe(ExitCode.OK)
    expect(version.out()).toBe('0.1.0\n')
  })
})

describe('handleSignals', () => {
  it('aborts on the first signal and forces the exit on the second', () => {
    const proc = new EventEmitter()
    const exits: number[] = []
    const { signal, dispose } = handleSignals(proc as unknown as NodeJS.Process, (code) => exits.push(code))
    proc.emit('SIGTERM')
    expect(signal.reason).toBe('SIGTERM')
    expect(exits).toEqual([])
    proc.emit('SIGINT')
    expect(exits).toEqual([130])
    dispose()
    expect(proc.listenerCount('SIGINT') + proc.listenerCount('SIGTERM')).toBe(0)
  })
})
