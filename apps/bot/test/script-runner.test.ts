import { memoryTransport } from '@parley/core'
import { createTestNetwork, waitFor } from '@parley/testing'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createBot, echo, parseScript, runScript, ScriptValidationError } from '../src/index.js'
import { yaml } from './helpers.js'

/** alice runs the echo behaviour on a fresh in-memory network; the script's peer joins that network. */
async function withAlice() {
  const net = await createTestNetwork({ size: 1, names: ['alice'] })
  onTestFinished(() => net.stop())
  const alice = net.peers[0]!
  echo(createBot(alice))
  return { net, alice, address: net.address(alice), transport: memoryTransport(net.network) }
}

describe('runScript', () => {
  it('file steps fail with one sentence: no such peer to offer to, no file within the timeout', async () => {
    const { address, transport } = await withAlice()
    const offer = parseScript(
      yaml('steps:', '  - connect: "{{alice}}"', '  - offer: { to: bob, file: nothing.txt }'),
      { source: 'offer.yaml' },
    )
    const first = await runScript(offer, { transport, host: 'tester', vars: { alice: address } })
    expect(first.error).toBe('offer.yaml line 3: steps[1].offer failed: no connected peer matches "bob"')
    const wait = parseScript(
      yaml('steps:', '  - connect: "{{alice}}"', '  - wait-file: { from: alice, timeout: 50 }'),
      { source: 'wait.yaml' },
    )
    const second = await runScript(wait, { transport, host: 'tester2', vars: { alice: address } })
    expect(second.error).toBe(
      'wait.yaml line 3: steps[1].wait-file failed: a file from alice was not received within 50 ms',
    )
  })

  it('runs a script that passes, logging what happens', async () => {
    const { alice, address, transport } = await withAlice()
    const script = parseScript(
      yaml(
        'steps:',
        '  - start: { name: tester, host: tester }',
        '  - connect: "{{alice}}"',
        '  - wait: { peer: alice }',
        '  - send: { to: alice, text: ping }',
        '  - wait: { message: "echo: ping", from: alice }',
        '  - peers',
        '  - assert: { peers: 1, names: alice, messages: 1, regex: "^echo: " }',
      ),
      { source: 'ok.yaml' },
    )
    const lines: string[] = []
    const left = waitFor(alice, 'peer:disconnect')

    const result = await runScript(script, { transport, vars: { alice: address }, log: (l) => lines.push(l) })

    expect(result).toMatchObject({ status: 'passed', ok: true, stepsRun: 7 })
    expect(result.stats).toMatchObject({ sent: 1, delivered: 1, failed: 0, received: 1 })
    expect(lines).toContain('→ alice: ping')
    expect(lines).toContain('← alice: echo: ping')
    expect(lines).toContain('1 connected, 0 known')
    // The runner started the peer, so it stops it at the end: alice sees a goodbye.
    expect((await left).reason).toBe('goodbye')
    // Its own stop is not alice leaving.
    expect(lines.filter((l) => l.startsWith('- '))).toEqual([])
  })

  it('fails on an assertion that does not hold, naming the step and what was found', async () => {
    const { address, transport } = await withAlice()
    const script = parseScript(
      yaml('steps:', '  - connect: "{{alice}}"', '  - assert: { peers: 2, names: [alice, bob] }', '  - quit'),
      { source: 'check.yaml' },
    )
    const result = await runScript(script, { transport, host: 'tester', vars: { alice: address } })
    expect(result).toMatchObject({ status: 'failed', ok: false, stepsRun: 1 })
    expect(result.error).toBe(
      'check.yaml line 3: steps[1].assert failed: expected 2 connected peers, found 1 (alice); ' +
        'expected bob to be connected (connected: alice)',
    )
    expect(result.failedStep?.kind).toBe('assert')
  })

  it('counts a message that arrived before the wait, and each wait takes its own message', async () => {
    const { address, transport } = await withAlice()
    const script = parseScript(
      yaml(
        'steps:',
        '  - connect: "{{alice}}"',
        '  - send: { to: alice, text: one }',
        '  - send: { to: alice, text: two }',
        // Both echoes may well be in already: the waits find them in order, one each.
        '  - wait: { message: "echo:" }',
        '  - wait: { message: "echo:" }',
        '  - wait: { message: "echo:", timeout: 50 }',
      ),
      { source: 'twice.yaml' },
    )
    const result = await runScript(script, { transport, host: 'tester', vars: { alice: address } })
    expect(result.stepsRun).toBe(5)
    expect(result.error).toBe(
      'twice.yaml line 7: steps[5].wait failed: no message containing "echo:" arrived within 50 ms',
    )
  })

  it('fails a wait that times out, and a send nobody can take', async () => {
    const { address, transport } = await withAlice()
    const waitScript = parseScript(
      yaml('steps:', '  - connect: "{{alice}}"', '  - wait: { peer: bob, timeout: 30 }'),
      {
        source: 'w.yaml',
      },
    )
    const waited = await runScript(waitScript, { transport, host: 'w', vars: { alice: address } })
    expect(waited.error).toBe('w.yaml line 3: steps[1].wait failed: bob did not connect within 30 ms')

    const sendScript = parseScript(yaml('steps:', '  - send: { to: ghost, text: boo }'), { source: 's.yaml' })
    const sent = await runScript(sendScript, { transport, host: 's' })
    expect(sent.error).toBe('s.yaml line 2: steps[0].send failed: no connected peer matches "ghost"')
    expect(sent.stats).toMatchObject({ sent: 1, failed: 1 })
  })

  it('refuses a script that uses an undefined variable before starting anything', async () => {
    const script = parseScript(yaml('steps:', '  - start: { name: x }', '  - connect: "{{peer}}"'), {
      source: 'vars.yaml',
    })
    await expect(
      runScript(script, { transport: memoryTransport((await withAlice()).net.network) }),
    ).rejects.toThrow(
      new ScriptValidationError([
        'vars.yaml line 3: steps[1].connect.address uses {{peer}}, which is not defined (set it under vars: or pass --var peer=...)',
      ]),
    )
  })

  it('stops when aborted, and quit leaves gracefully', async () => {
    const { alice, address, transport } = await withAlice()
    const controller = new AbortController()
    const script = parseScript(yaml('steps:', '  - connect: "{{alice}}"', '  - wait: { message: never }'), {
      source: 'a.yaml',
    })
    let connected = () => {}
    const joined = new Promise<void>((resolve) => {
      connected = resolve
    })
    const log = (line: string) => {
      if (line.startsWith('connected to alice')) connected()
    }
    const running = runScript(script, {
      transport,
      host: 'a',
      vars: { alice: address },
      log,
      signal: controller.signal,
    })
    await joined // the connect step is done; the script now waits for a message that never comes
    const left = waitFor(alice, 'peer:disconnect')
    controller.abort('SIGINT')
    expect(await running).toMatchObject({ status: 'aborted', ok: false, stepsRun: 1 })
    expect((await left).reason).toBe('goodbye')

    const quitter = parseScript(yaml('steps:', '  - connect: "{{alice}}"', '  - quit', ''), {
      source: 'q.yaml',
    })
    const gone = waitFor(alice, 'peer:disconnect')
    expect(await runScript(quitter, { transport, host: 'q', vars: { alice: address } })).toMatchObject({
      status: 'passed',
      stepsRun: 2,
    })
    expect(await gone).toMatchObject({ reason: 'goodbye', peer: { name: 'bot' } })
  })

  it('drives a peer it is given, skipping start and leaving it running', async () => {
    const net = await createTestNetwork({ size: 2, names: ['given', 'alice'] })
    onTestFinished(() => net.stop())
    const [given, alice] = net.peers as [(typeof net.peers)[0], (typeof net.peers)[0]]
    await net.connect(given, alice)
    const script = parseScript(
      yaml('steps:', '  - start: { name: ignored }', '  - broadcast: "hi from {{name}}"'),
      {
        source: 'g.yaml',
      },
    )
    const got = waitFor(alice, 'message')
    const result = await runScript(script, { peer: given })
    expect(result).toMatchObject({ status: 'passed', stepsRun: 2 })
    expect((await got).text).toBe('hi from given')
    expect(given.status).toBe('running')
  })
})
