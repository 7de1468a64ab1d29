import { createPeer, tcpTransport } from '@parley/core'
import { type FakeLegacyPeer, startFakeLegacyPeer } from '@parley/testing'
import { describe, expect, onTestFinished, test } from 'vitest'
import { parseOptions } from '../src/options.js'
import { type CliRun, startCli } from './helpers/cli.js'
import { KEY } from './helpers/streams.js'

// --legacy against a fake original plain-text peer (packages/testing/src/legacy-peer.ts), over TCP
// on 127.0.0.1: what the user sees, in non-interactive mode and in the menu.

async function fakeLegacy(name = 'bob'): Promise<FakeLegacyPeer> {
  const legacy = await startFakeLegacyPeer({ name })
  onTestFinished(() => legacy.close())
  return legacy
}

async function cli(extra: string[], init: { tty?: boolean } = {}): Promise<{ run: CliRun; address: string }> {
  const run = startCli(['--name', 'alice', '--host', '127.0.0.1', '--port', '0', ...extra], {
    ...init,
    columns: 120,
    rows: 40,
  })
  const address = await run.address()
  return { run, address }
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

describe('--legacy and --legacy-peer flags', () => {
  const parse = (argv: string[], env: Record<string, string> = {}) => {
    const err: string[] = []
    const result = parseOptions(argv, { env, out: () => {}, err: (t) => err.push(t) })
    return { result, err: err.join('') }
  }

  test('off by default; on with --legacy, PARLEY_LEGACY=1, or implied by --legacy-peer (repeatable)', () => {
    const options = (argv: string[], env?: Record<string, string>) => {
      const { result } = parse(argv, env)
      if (result.kind !== 'run') throw new Error('expected options')
      return result.options
    }
    expect(options([])).toMatchObject({ legacy: false, legacyPeers: [] })
    expect(options(['--legacy'])).toMatchObject({ legacy: true })
    expect(options([], { PARLEY_LEGACY: '1' })).toMatchObject({ legacy: true })
    expect(options([], { PARLEY_LEGACY: '0' })).toMatchObject({ legacy: false })
    expect(options(['--legacy-peer', '127.0.0.1:5001', '--legacy-peer', 'lab-pc:5002'])).toMatchObject({
      legacy: true,
      legacyPeers: ['127.0.0.1:5001', 'lab-pc:5002'],
    })
  })

  test('a bad --legacy-peer or PARLEY_LEGACY is a one-line usage error (exit 2)', () => {
    for (const [argv, env, expected] of [
      [['--legacy-peer', 'nope'], {}, /--legacy-peer: "nope" is not host:port/],
      [['--legacy-peer', '127.0.0.1:0'], {}, /must be a whole number from 1 to 65535/],
      [[], { PARLEY_LEGACY: 'maybe' }, /PARLEY_LEGACY must be 1 or 0/],
    ] as const) {
      const { result, err } = parse([...argv], { ...env })
      expect(result).toEqual({ kind: 'exit', code: 2 })
      expect(err.trim().split('\n')).toHaveLength(1)
      expect(err).toMatch(expected)
    }
  })
})

describe('non-interactive --legacy with an original plain-text peer', () => {
  test('chat both ways, marked "legacy, unverified"; clear text only to legacy:<name> or legacy:<host:port>', async () => {
    const bob = await fakeLegacy()
    const carol = await fakeLegacy('carol')
    const { run, address } = await cli(['--no-interactive', '--legacy'])

    await bob.send(address, 'hello from the old world')
    await run.stdout.waitFor(
      new RegExp(`bob \\[legacy, unverified\\] \\(${esc(bob.address)}\\): hello from the old world`),
    )
    await run.stdout.waitFor(new RegExp(`\\+ bob \\[legacy, unverified\\] \\(${esc(bob.address)}\\) joined`))

    // A bare name is a Parley peer's: it never falls back to the legacy peer of that name.
    run.line('send bob not for legacy')
    await run.stderr.waitFor(/not delivered to bob: no connected peer matches "bob"/)
    run.line('send legacy:bob hi bob')
    expect(await bob.next((r) => r.kind === 'chat')).toMatchObject({ address, name: 'alice', text: 'hi bob' })
    expect(bob.received.map((r) => r.text)).toEqual(['hi bob'])
    await run.stdout.waitFor(/→ you → bob \[legacy, unverified\] .*: hi bob/)

    run.line(`send legacy:${carol.address} hi carol`)
    expect(await carol.next((r) => r.kind === 'chat')).toMatchObject({
      address,
      name: 'alice',
      text: 'hi carol',
    })
  })

  test('peers lists legacy peers with a legacy marker; the legacy peer lists us', async () => {
    const bob = await fakeLegacy()
    const { run, address } = await cli(['--no-interactive', '--legacy'])
    await bob.send(address, 'hi')
    await run.stdout.waitFor(/joined/)
    run.line('send legacy:bob hello')
    await bob.next((r) => r.kind === 'chat')
    expect(bob.peers.get(address)).toBe('alice')

    const from = run.stdout.mark()
    run.line('peers')
    const m = await run.stdout.waitFor(/legacy peers \(1\) \[legacy, unverified\].*\n.*\n(.*)/, { from })
    expect(m[1]).toMatch(new RegExp(`bob\\s+${esc(bob.address)}\\s+\\S+( ago)?\\s+legacy`))
  })

  test('connect-all sends connect to --legacy-peer peers; quit sends exit to every known legacy peer', async () => {
    const bob = await fakeLegacy()
    const carol = await fakeLegacy('carol')
    const { run, address } = await cli(['--no-interactive', '--legacy-peer', bob.address])
    await carol.send(address, 'connect') // carol announces herself: now known too

    await run.stdout.waitFor(/\+ carol \[legacy, unverified\]/)
    run.line('connect-all')
    await run.stdout.waitFor(new RegExp(`✔ sent connect to ${esc(bob.address)} \\[legacy, unverified\\]`))
    expect(await bob.next((r) => r.kind === 'connect')).toMatchObject({ address, name: 'alice' })
    expect(bob.peers.get(address)).toBe('alice')

    run.line('quit')
    expect(await run.exited).toBe(0)
    for (const p of [bob, carol]) {
      expect(await p.next((r) => r.kind === 'exit')).toMatchObject({ address, name: 'alice' })
      expect(p.peers.has(address)).toBe(false)
    }
  })

  test('malformed legacy input is dropped with one clear line; the peer keeps serving', async () => {
    const bob = await fakeLegacy()
    const { run, address } = await cli(['--no-interactive', '--legacy'])
    await bob.sendRaw(address, 'garbage-without-spaces')
    await run.stdout.waitFor(
      /! dropped legacy input from 127\.0\.0\.1:\d+: expected "<ip>:<port> <name> <message>"/,
    )
    await bob.sendRaw(address, `${bob.address} bob ${'x'.repeat(3000)}`)
    await run.stdout.waitFor(/! dropped legacy input from .*: more than 1024 bytes/)
    await bob.sendRaw(address, `${bob.address} bob \x1b[2Jgotcha`)
    // Control characters from a legacy peer never reach the terminal.
    await run.stdout.waitFor(/bob \[legacy, unverified\] .*: \[2Jgotcha/)
    expect(run.stdout.raw).not.toContain('\x1b[2J')

    // Parley peers are still served.
    const dave = createPeer({ transport: tcpTransport(), name: 'dave', listen: '127.0.0.1:0' })
    onTestFinished(() => dave.stop())
    await dave.start()
    await dave.connect(address)
    await run.stdout.waitFor(/\+ dave .* joined/)
    await dave.send(dave.peers().connected[0]!.id, 'parley still here')
    await run.stdout.waitFor(/dave \(.*\): parley still here/)
    expect(run.stderr.text).not.toMatch(/\n\s+at /)
  })

  test('a message too long for one legacy recv is refused with one sentence, not split', async () => {
    const bob = await fakeLegacy()
    const { run } = await cli(['--no-interactive', '--legacy-peer', bob.address])
    run.line(`send legacy:${bob.address} ${'y'.repeat(1100)}`)
    await run.stderr.waitFor(/✖ not delivered to .*: the message is too long for a legacy peer/)
    run.line(`send legacy:${bob.address} exit`)
    await run.stderr.waitFor(/"exit" is a command in the legacy protocol/)
    run.line(`send legacy:${bob.address} fits`)
    await bob.next((r) => r.kind === 'chat')
    expect(bob.received.map((r) => r.text)).toEqual(['fits'])
  })

  test('a name a Parley peer had never means a legacy peer, even written legacy:<name>', async () => {
    const { run, address } = await cli(['--no-interactive', '--legacy'])
    // The real bob is a Parley peer; he connects, then leaves.
    const realBob = createPeer({ transport: tcpTransport(), name: 'bob', listen: '127.0.0.1:0' })
    onTestFinished(() => realBob.stop())
    await realBob.start()
    await realBob.connect(address)
    await run.stdout.waitFor(/\+ bob .* joined/)
    await realBob.stop()
    await run.stdout.waitFor(/- bob .* left/)
    // An unauthenticated legacy peer now calls itself bob .
    const impostor = await fakeLegacy('bob')
    await impostor.send(address, 'it is me, bob')
    await run.stdout.waitFor(/bob \[legacy, unverified\].*: it is me, bob/)

    run.line('send bob secret')
    await run.stderr.waitFor(/not delivered to bob: /)
    run.line('send legacy:bob secret')
    await run.stderr.waitFor(
      /not delivered to legacy:bob: "bob" is the name of a Parley peer known here, so no clear text goes to a legacy peer by that name/,
    )
    // A look-alike (Cyrillic о) of the Parley name is refused too.
    run.line('send legacy:b\u043eb secret')
    await run.stderr.waitFor(/looks like "bob", which is the name of a Parley peer/)
    // Addressed by its host:port as legacy, it is the user's explicit choice: that one goes.
    run.line(`send legacy:${impostor.address} addressed on purpose`)
    await impostor.next((r) => r.kind === 'chat')
    expect(impostor.received.map((r) => r.text)).toEqual(['addressed on purpose'])
  })

  test('--json: legacy events are their own types, marked legacy and unverified', async () => {
    const bob = await fakeLegacy()
    const run = startCli(['--no-interactive', '--json', '--legacy', '--host', '127.0.0.1', '--port', '0'])
    const ready = await run.stdout.waitFor(/^(\{"type":"ready".*)$/m)
    const address = (JSON.parse(ready[1]!) as { addresses: string[] }).addresses[0]!
    await bob.send(address, 'json please')
    const m = await run.stdout.waitFor(/^(\{"type":"legacy-message".*)$/m)
    expect(JSON.parse(m[1]!)).toMatchObject({
      from: { address: bob.address, name: 'bob' },
      text: 'json please',
      legacy: true,
      verified: false,
    })
    run.line('peers')
    const p = await run.stdout.waitFor(/^(\{"type":"peers".*)$/m)
    expect(JSON.parse(p[1]!).legacy).toEqual([
      { address: bob.address, name: 'bob', lastSeen: expect.any(Number), legacy: true },
    ])
  })
})

describe('without --legacy', () => {
  test('legacy bytes are refused cleanly: nothing shown, nothing crashes, Parley peers still served', async () => {
    const bob = await fakeLegacy()
    const { run, address } = await cli(['--no-interactive'])
    const socket = await bob.sendRaw(address, `${bob.address} bob hello?`)
    expect(socket.destroyed).toBe(true)
    const dave = createPeer({ transport: tcpTransport(), name: 'dave', listen: '127.0.0.1:0' })
    onTestFinished(() => dave.stop())
    await dave.start()
    await dave.connect(address)
    await dave.send(dave.peers().connected[0]!.id, 'parley works')
    await run.stdout.waitFor(/dave \(.*\): parley works/)
    expect(run.stdout.text).not.toMatch(/hello\?|legacy/)
    expect(run.stderr.text).toBe('')
  })
})

describe('the menu with --legacy', () => {
  test('1 sends to a legacy peer, 2 lists it, 3 sends connect, 0 sends exit', async () => {
    const bob = await fakeLegacy()
    const carol = await fakeLegacy('carol')
    const { run, address } = await cli(['--menu', '--legacy-peer', bob.address], { tty: true })
    await run.stdout.waitFor('0) Quit')
    const keys = async (input: string, expected: string | RegExp) => {
      const from = run.stdout.mark()
      run.stdin.write(input)
      return run.stdout.waitFor(expected, { from })
    }

    await keys(`1${KEY.enter}`, '? Send to')
    expect(run.stdout.text).toMatch(new RegExp(`1\\) \\[legacy, unverified\\] ${esc(bob.address)}`))
    await keys(`1${KEY.enter}`, '? Message')
    await keys(`hi from the menu${KEY.enter}`, '0) Quit')
    expect(await bob.next((r) => r.kind === 'chat')).toMatchObject({ address, text: 'hi from the menu' })

    // A legacy peer typed in by address.
    await keys(`1${KEY.enter}`, '? Send to')
    await keys(`l${KEY.enter}`, '? Address')
    await keys(`${carol.address}${KEY.enter}`, '? Message')
    await keys(`hi carol${KEY.enter}`, '0) Quit')
    expect(await carol.next((r) => r.kind === 'chat')).toMatchObject({ address, text: 'hi carol' })

    // Wait for the menu to be back: keys typed before a prompt starts are discarded.
    await keys(`2${KEY.enter}`, /legacy peers \(2\)[\s\S]*0\) Quit/)
    await keys(`3${KEY.enter}`, /sent connect to .*\n[\s\S]*sent connect to [\s\S]*0\) Quit/)
    await bob.next((r) => r.kind === 'connect')
    await carol.next((r) => r.kind === 'connect')

    await keys(`0${KEY.enter}`, 'stopped')
    expect(await run.exited).toBe(0)
    await bob.next((r) => r.kind === 'exit')
    await carol.next((r) => r.kind === 'exit')
  })
})
