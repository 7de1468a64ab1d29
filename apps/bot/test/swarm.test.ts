import { memoryNetwork, memoryTransport, tcpTransport } from '@parley/core'
import { describe, expect, it } from 'vitest'
import { edges, parseScript, runSwarm, type SwarmInit, seededRandom, startSwarm } from '../src/index.js'
import { yaml } from './helpers.js'

/** A swarm over a fresh in-memory network, one host per bot. */
function memory(): Pick<SwarmInit, 'transport' | 'listen'> {
  const network = memoryNetwork()
  return { transport: (i) => memoryTransport(network, { host: `bot-${i}` }), listen: (i) => `bot-${i}:0` }
}

describe('topologies', () => {
  it('wires ring, star and mesh as drawn', () => {
    expect(edges('ring', 4)).toEqual([
      [0, 1],
      [1, 2],
      [2, 3],
      [3, 0],
    ])
    expect(edges('ring', 2)).toEqual([[0, 1]])
    expect(edges('star', 4)).toEqual([
      [1, 0],
      [2, 0],
      [3, 0],
    ])
    expect(edges('mesh', 4)).toHaveLength(6)
    expect(edges('mesh', 1)).toEqual([])
  })

  it('makes a random topology that reaches everyone, repeatably for one seed', () => {
    for (let seed = 0; seed < 50; seed++) {
      const links = edges('random', 12, seededRandom(seed))
      const reached = new Set([0])
      for (let grew = true; grew; ) {
        grew = false
        for (const [a, b] of links) {
          if (reached.has(a) !== reached.has(b)) {
            reached.add(a).add(b)
            grew = true
          }
        }
      }
      expect(reached.size).toBe(12)
      expect(edges('random', 12, seededRandom(seed))).toEqual(links)
    }
  })
})

describe('swarm over memory', () => {
  // With echo, each bot broadcasts one hello and every neighbour echoes it back: 2 messages per link
  // direction, so 4 per link, all delivered, and each bot sees exactly its neighbours.
  it.each([
    { topology: 'ring' as const, count: 6, links: 6, seen: [2, 2] },
    { topology: 'star' as const, count: 8, links: 7, seen: [1, 7] },
    { topology: 'mesh' as const, count: 5, links: 10, seen: [4, 4] },
  ])(
    'runs echo on a $topology of $count bots and counts every message',
    async ({ topology, count, links, seen }) => {
      const summary = await runSwarm({ count, topology, behaviour: 'echo', ...memory() })
      expect(summary).toMatchObject({
        bots: count,
        topology,
        transport: 'memory',
        workload: 'behaviour echo',
        links,
        endedBy: 'settled',
        messages: { sent: 4 * links, delivered: 4 * links, failed: 0, received: 4 * links },
        peersSeen: { min: seen[0], max: seen[1] },
      })
      expect(summary.perBot.map((b) => b.name)).toEqual(Array.from({ length: count }, (_, i) => `bot-${i}`))
    },
  )

  it('runs echo on a random topology of 10 bots', async () => {
    // The graph seed 7 draws, written out here so the expected counts do not come from the code under test.
    const drawn = [
      [1, 0],
      [2, 0],
      [3, 2],
      [4, 2],
      [5, 2],
      [6, 2],
      [7, 3],
      [8, 1],
      [9, 4],
      [7, 2],
      [1, 7],
      [5, 1],
      [9, 2],
      [7, 0],
    ]
    expect(edges('random', 10, seededRandom(7))).toEqual(drawn)
    const degree = Array.from({ length: 10 }, (_, bot) => drawn.filter((link) => link.includes(bot)).length)
    const summary = await runSwarm({ count: 10, topology: 'random', seed: 7, behaviour: 'echo', ...memory() })
    expect(summary.messages).toEqual({ sent: 56, delivered: 56, failed: 0, received: 56 })
    // Each bot gets its neighbours' hellos and their echoes of its own: two messages per neighbour.
    expect(summary.perBot.map((b) => [b.received, b.peersSeen])).toEqual(degree.map((d) => [2 * d, d]))
    expect(summary.peersSeen).toMatchObject({ min: 1, max: 7 })
  })

  it('greets every neighbour once (greeter) and chats a fixed number of times (chatter)', async () => {
    const greeted = await runSwarm({ count: 5, topology: 'ring', behaviour: 'greeter', ...memory() })
    expect(greeted.messages).toMatchObject({ sent: 10, delivered: 10, received: 10 })

    const chatted = await runSwarm({
      count: 5,
      topology: 'star',
      behaviour: 'chatter',
      behaviourOptions: { interval: 5, count: 3 },
      ...memory(),
    })
    // 3 broadcasts per bot; the hub has 4 neighbours, the leaves 1 each: 3 × (4 + 4) sends.
    expect(chatted).toMatchObject({ endedBy: 'settled', messages: { sent: 24, delivered: 24, received: 24 } })
  })

  it('settles a ring of relays: every hello reaches every bot, and forwarding stops', async () => {
    const summary = await runSwarm({ count: 7, topology: 'ring', behaviour: 'relay', ...memory() })
    expect(summary.endedBy).toBe('settled')
    expect(summary.messages.failed).toBe(0)
    for (const bot of summary.perBot) expect(bot.received).toBeGreaterThanOrEqual(6)
    // Each bot forwards each of the 7 hellos at most once, to at most 2 peers, plus its own hello.
    expect(summary.messages.sent).toBeLessThanOrEqual(7 * (7 * 2 + 2))
  })

  it('runs a script on every bot with per-bot variables, and reports failures', async () => {
    const script = parseScript(
      yaml(
        'steps:',
        '  - broadcast: "hi from {{name}}, {{index}} of {{count}}"',
        '  - wait: { message: "hi from", timeout: 2000 }',
        '  - assert: { peers: 2 }',
      ),
      { source: 'each.yaml' },
    )
    const ok = await runSwarm({ count: 6, topology: 'ring', script, ...memory() })
    expect(ok).toMatchObject({
      workload: 'script each.yaml',
      endedBy: 'settled',
      scripts: { passed: 6, failed: 0, aborted: 0, errors: [] },
      messages: { sent: 12, delivered: 12, received: 12 },
    })

    // In a star, only the hub has 4 peers.
    const star = await runSwarm({ count: 5, topology: 'star', script, ...memory() })
    expect(star.scripts).toMatchObject({ passed: 0, failed: 5 })
    expect(star.scripts?.errors[0]).toBe(
      'bot-0: each.yaml line 4: steps[2].assert failed: expected 2 connected peers, found 4 (bot-1, bot-2, bot-3, bot-4)',
    )
  })

  it('ends at the duration when the work does not finish, and on the signal', async () => {
    const script = parseScript(yaml('steps:', '  - wait: { message: never, timeout: 60000 }'), {
      source: 'slow.yaml',
    })
    const timedOut = await runSwarm({ count: 3, topology: 'ring', script, duration: 50, ...memory() })
    expect(timedOut).toMatchObject({ endedBy: 'duration', scripts: { passed: 0, aborted: 3 } })

    const controller = new AbortController()
    const swarm = await startSwarm({
      count: 3,
      topology: 'mesh',
      script,
      signal: controller.signal,
      ...memory(),
    })
    controller.abort('SIGINT')
    expect(await swarm.done).toBe('signal')
    const summary = await swarm.stop()
    expect(summary.endedBy).toBe('signal')
    expect(swarm.bots.every((b) => b.peer.status === 'stopped')).toBe(true)
    expect(await swarm.stop()).toBe(summary) // idempotent
  })

  it('rejects a size out of range and a name template without {{index}}', async () => {
    await expect(runSwarm({ count: 0, topology: 'ring', ...memory() })).rejects.toMatchObject({
      code: 'USAGE',
    })
    await expect(runSwarm({ count: 10_001, topology: 'ring', ...memory() })).rejects.toMatchObject({
      code: 'USAGE',
    })
    // A full mesh stays bounded: 201 bots would be over 20,000 connections.
    await expect(runSwarm({ count: 201, topology: 'mesh', ...memory() })).rejects.toThrow(/full mesh/)
    await expect(runSwarm({ count: 2, topology: 'ring', name: 'same', ...memory() })).rejects.toThrow(
      'the bot name template must include {{index}}',
    )
  })
})

describe('swarm over TCP', () => {
  it('runs echo on a ring of 4 bots on 127.0.0.1 with ephemeral ports', async () => {
    const summary = await runSwarm({
      count: 4,
      topology: 'ring',
      behaviour: 'echo',
      transport: tcpTransport(),
    })
    expect(summary).toMatchObject({
      transport: 'tcp',
      endedBy: 'settled',
      messages: { sent: 16, delivered: 16, failed: 0, received: 16 },
      peersSeen: { min: 2, max: 2 },
    })
  })
})
