import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  createPeer,
  memoryNetwork,
  memoryTransport,
  type Peer,
  type Transport,
  tcpTransport,
} from '@parley/core'
import { createFileService } from '@parley/files'
import { createTestNetwork, inbox, waitFor } from '@parley/testing'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { createBot, echo, loadScript, runScript, runSwarm } from '../src/index.js'

const examples = fileURLToPath(new URL('../examples/', import.meta.url))
const example = (name: string) => loadScript(`${examples}${name}`)

/**
 * Peers for an example to talk to, over the shared in-memory harness or over real TCP, and the transport
 * and host the script's own peer uses.
 */
async function cast(kind: 'memory' | 'tcp', names: string[]) {
  let peers: Peer[]
  let transport: Transport
  let host: string
  let address: (p: Peer) => string
  if (kind === 'memory') {
    const net = await createTestNetwork({ size: names.length, names })
    onTestFinished(() => net.stop())
    peers = net.peers
    transport = memoryTransport(net.network, { host: 'script' })
    host = 'script'
    address = (p) => net.address(p)
  } else {
    peers = names.map((name) => createPeer({ transport: tcpTransport(), name, listen: '127.0.0.1:0' }))
    onTestFinished(() => Promise.all(peers.map((p) => p.stop())).then(() => undefined))
    await Promise.all(peers.map((p) => p.start()))
    transport = tcpTransport()
    host = '127.0.0.1'
    address = (p) => p.addresses[0]!
  }
  const connect = async (a: Peer, b: Peer) => {
    const seen = waitFor(b, 'peer:connect', (info) => info.id === a.id)
    await a.connect(address(b))
    await seen
  }
  return { peers, transport, host, address, connect }
}

describe('every example script', () => {
  it('has a test below', async () => {
    const files = (await readdir(examples)).sort()
    expect(files).toEqual([
      'hello.yaml',
      'late-joiner.yaml',
      'leave.json',
      'share-file.yaml',
      'swarm-check.yaml',
    ])
  })
})

describe.each(['memory', 'tcp'] as const)('examples over %s', (kind) => {
  it('hello.yaml: says hello to a peer, gets an answer, thanks it and leaves', async () => {
    const { peers, transport, host, address } = await cast(kind, ['alice'])
    const alice = peers[0]!
    echo(createBot(alice))
    const got = inbox(alice)

    const result = await runScript(await example('hello.yaml'), {
      transport,
      host,
      vars: { peer: address(alice) },
    })

    expect(result).toMatchObject({ status: 'passed', stepsRun: 7 })
    expect(got.texts()).toEqual(['hello from hello-bot! say something back?', 'thanks, nice talking to you'])
  })

  it('late-joiner.yaml: finds everyone through one peer, connects to all, says hi', async () => {
    const { peers, transport, host, address, connect } = await cast(kind, ['hub', 'p1', 'p2'])
    const [hub, p1, p2] = peers as [Peer, Peer, Peer]
    await connect(p1, hub)
    await connect(p2, hub)
    const p1Got = waitFor(p1, 'message')
    const p2Got = waitFor(p2, 'message')

    const result = await runScript(await example('late-joiner.yaml'), {
      transport,
      host,
      vars: { peer: address(hub) },
    })

    expect(result).toMatchObject({ status: 'passed', stepsRun: 8 })
    const hi = `hi everyone, late-joiner here: I found you through ${address(hub)}`
    expect((await p1Got).text).toBe(hi)
    expect((await p2Got).text).toBe(hi)
  })

  it('leave.json: joins, waits for an answer, says bye and leaves while the others keep talking', async () => {
    const { peers, transport, host, address, connect } = await cast(kind, ['p0', 'p1'])
    const [p0, p1] = peers as [Peer, Peer]
    await connect(p0, p1)
    // p0 is an echo bot, first to answer; p1 answers after it: the leaver waits for p1's answer.
    let echoDone: () => void = () => {}
    const echoed = new Promise<void>((resolve) => {
      echoDone = resolve
    })
    p0.once('message', (m) => void p0.send(m.from.id, `echo: ${m.text}`).finally(echoDone))
    const atP1: string[] = []
    const welcomed = new Promise<unknown>((resolve) =>
      p1.once('message', (m) => {
        void echoed
          .then(() => {
            atP1.push('welcome sent')
            return p1.send(m.from.id, `welcome, ${m.from.name}`)
          })
          .then(resolve, resolve)
      }),
    )
    p1.on('message', (m) => m.text.startsWith('bye') && atP1.push('bye'))
    const p0Left = waitFor(p0, 'peer:disconnect', (e) => e.peer.name === 'leaver')
    const p1Left = waitFor(p1, 'peer:disconnect', (e) => e.peer.name === 'leaver')
    const p0Got = inbox(p0)

    const result = await runScript(await example('leave.json'), {
      transport,
      host,
      vars: { peer: address(p0) },
    })

    expect(result).toMatchObject({ status: 'passed', stepsRun: 7 })
    // The leaver took p1's answer, not the echo: it said bye only after it.
    await welcomed
    await vi.waitFor(() => expect(atP1).toEqual(['welcome sent', 'bye']))
    expect((await p0Left).reason).toBe('goodbye')
    expect((await p1Left).reason).toBe('goodbye')
    expect(p0Got.texts()).toEqual([
      'hi all, leaver is only here until someone answers',
      'bye, leaver is leaving; carry on without me',
    ])
    // The others keep talking.
    const next = waitFor(p0, 'message', (m) => m.text === 'still here')
    await p1.send(p0.id, 'still here')
    await next
  })

  it('share-file.yaml: offers a file, the peer saves it; then takes the file the peer sends back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'parley-bot-files-'))
    onTestFinished(() => rm(dir, { recursive: true, force: true }))
    const network = kind === 'memory' ? memoryNetwork() : undefined
    const files = createFileService({ downloads: join(dir, 'alice-in') })
    const alice = createPeer({
      transport: network ? memoryTransport(network) : tcpTransport(),
      name: 'alice',
      listen: network ? 'alice:1' : '127.0.0.1:0',
      services: [files],
    })
    onTestFinished(async () => {
      await files.close()
      await alice.stop()
    })
    await alice.start()
    const outgoing = join(dir, 'report.txt')
    await writeFile(outgoing, 'from the bot\n'.repeat(10_000))
    const back = join(dir, 'answer.bin')
    await writeFile(back, 'from alice\n'.repeat(20_000))
    // alice accepts the bot's file, and sends one back when the bot says thanks.
    files.on('offer', (offer) => void offer.accept())
    alice.on('message', (m) => {
      if (m.text.startsWith('thanks!')) void files.offer(m.from.id, back)
    })
    const lines: string[] = []
    const script = await example('share-file.yaml')
    const result = await runScript(script, {
      transport: network ? memoryTransport(network, { host: 'script' }) : tcpTransport(),
      host: network ? 'script' : '127.0.0.1',
      vars: { peer: alice.addresses[0]!, file: outgoing },
      downloads: join(dir, 'bot-in'),
      log: (l) => lines.push(l),
    })
    expect(result.error).toBeUndefined()
    expect(result).toMatchObject({ status: 'passed', stepsRun: 6 })
    expect(await readFile(join(dir, 'alice-in', 'report.txt'), 'utf8')).toBe(await readFile(outgoing, 'utf8'))
    expect(await readFile(join(dir, 'bot-in', 'answer.bin'), 'utf8')).toBe(await readFile(back, 'utf8'))
    expect(lines).toContain(`⇣ saved answer.bin from alice at ${join(dir, 'bot-in', 'answer.bin')}`)
  })

  it('swarm-check.yaml: passes on every bot of a swarm', async () => {
    const script = await example('swarm-check.yaml')
    const size = kind === 'tcp' ? 20 : 10
    const network = memoryNetwork()
    const summary = await runSwarm({
      count: size,
      topology: 'ring',
      script,
      ...(kind === 'memory'
        ? {
            transport: (i: number) => memoryTransport(network, { host: `bot-${i}` }),
            listen: (i: number) => `bot-${i}:0`,
          }
        : { transport: tcpTransport() }),
    })
    expect(summary).toMatchObject({
      bots: size,
      endedBy: 'settled',
      scripts: { passed: size, failed: 0, aborted: 0 },
      messages: { sent: 2 * size, delivered: 2 * size, failed: 0 },
    })
  })
})
