import { createTestNetwork, inbox, waitFor } from '@parley/testing'
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import { chatter, createBot, echo, greeter, parseRelayed, relay, Traffic } from '../src/index.js'

afterEach(() => {
  vi.useRealTimers()
})

async function network(size: number, names?: string[]) {
  const net = await createTestNetwork({ size, names })
  onTestFinished(() => net.stop())
  return net
}

describe('echo', () => {
  it('replies to every message with the same text, prefixed', async () => {
    const net = await network(2, ['bot', 'alice'])
    const [botPeer, alice] = net.peers as [(typeof net.peers)[0], (typeof net.peers)[0]]
    const bot = createBot(botPeer)
    const handle = echo(bot)
    onTestFinished(() => handle.stop())
    await net.connect(alice, botPeer)
    const got = inbox(alice)

    await alice.send(botPeer.id, 'hi')
    await alice.send(botPeer.id, 'how are you?')
    await got.waitForCount(2)

    expect(got.texts()).toEqual(['echo: hi', 'echo: how are you?'])
    expect(got.messages.every((m) => m.from.id === botPeer.id)).toBe(true)
    await bot.traffic.idle()
    expect(bot.stats).toMatchObject({ sent: 2, delivered: 2, failed: 0, received: 2 })
  })

  it('does not echo an echo, so two echo bots stay quiet', async () => {
    const net = await network(3, ['a', 'b', 'alice'])
    const [a, b, alice] = net.peers as [(typeof net.peers)[0], (typeof net.peers)[0], (typeof net.peers)[0]]
    const traffic = new Traffic()
    const botA = createBot(a, { traffic })
    const botB = createBot(b, { traffic })
    echo(botA)
    echo(botB)
    await net.connect(a, b)
    await net.connect(alice, a)

    // alice → a; a echoes to alice. Then a sends b a text that already carries the prefix: b must not answer.
    await alice.send(a.id, 'ping')
    await botA.send(b.id, 'echo: ping')
    await traffic.idle()

    expect(botA.stats).toMatchObject({ sent: 2, received: 1 })
    expect(botB.stats).toMatchObject({ sent: 0, received: 1 })
  })

  it('refuses an empty prefix', async () => {
    const net = await network(1)
    expect(() => echo(createBot(net.peers[0]!), { prefix: '' })).toThrow(
      expect.objectContaining({ code: 'USAGE' }),
    )
  })
})

describe('greeter', () => {
  it('welcomes each peer that joins, by name', async () => {
    const net = await network(3, ['host', 'alice', 'bob'])
    const [host, alice, bob] = net.peers as [
      (typeof net.peers)[0],
      (typeof net.peers)[0],
      (typeof net.peers)[0],
    ]
    const bot = createBot(host)
    greeter(bot, { text: 'welcome, {{peer}}! I am {{name}}' })
    const aliceGot = waitFor(alice, 'message')
    const bobGot = waitFor(bob, 'message')

    await net.connect(alice, host)
    await net.connect(host, bob) // outbound joins count too

    expect((await aliceGot).text).toBe('welcome, alice! I am host')
    expect((await bobGot).text).toBe('welcome, bob! I am host')
    await bot.traffic.idle()
    expect(bot.stats).toMatchObject({ sent: 2, delivered: 2 })
  })

  it('rejects a template variable it does not know', async () => {
    const net = await network(1)
    expect(() => greeter(createBot(net.peers[0]!), { text: 'hi {{who}}' })).toThrow(
      'the greeting uses {{who}}; only {{peer}} and {{name}} exist',
    )
  })
})

describe('chatter', () => {
  it('sends count messages, one per interval, then is done (fake timers)', async () => {
    const net = await network(2, ['chatty', 'alice'])
    const [chatty, alice] = net.peers as [(typeof net.peers)[0], (typeof net.peers)[0]]
    await net.connect(alice, chatty)
    const got = inbox(alice)
    const bot = createBot(chatty)

    vi.useFakeTimers()
    const handle = chatter(bot, { interval: 1_000, count: 3, to: 'alice' })
    await vi.advanceTimersByTimeAsync(999)
    expect(bot.stats.sent).toBe(0)
    await vi.advanceTimersByTimeAsync(1)
    expect(bot.stats.sent).toBe(1)
    await vi.advanceTimersByTimeAsync(2_000)
    expect(bot.stats.sent).toBe(3)
    // The loop is bounded: nothing more, however long we wait (and the acks get delivered meanwhile).
    await vi.advanceTimersByTimeAsync(10_000)
    await handle.done
    vi.useRealTimers()

    expect(got.texts()).toEqual(['chatter 1 from chatty', 'chatter 2 from chatty', 'chatter 3 from chatty'])
    expect(bot.stats).toMatchObject({ sent: 3, delivered: 3, failed: 0 })
  })

  it('broadcasts when no target is given, and stop() ends it early', async () => {
    const net = await network(3, ['chatty', 'alice', 'bob'])
    const [chatty, alice, bob] = net.peers as [
      (typeof net.peers)[0],
      (typeof net.peers)[0],
      (typeof net.peers)[0],
    ]
    await net.star() // chatty is p0 of the star: connected to both
    const aliceGot = inbox(alice)
    const bobGot = inbox(bob)
    const bot = createBot(chatty)

    vi.useFakeTimers()
    const handle = chatter(bot, { interval: 100, count: 10, text: '#{{n}}' })
    await vi.advanceTimersByTimeAsync(250)
    handle.stop()
    await vi.advanceTimersByTimeAsync(1_000)
    await handle.done
    vi.useRealTimers()

    expect(aliceGot.texts()).toEqual(['#1', '#2'])
    expect(bobGot.texts()).toEqual(['#1', '#2'])
    expect(bot.stats).toMatchObject({ sent: 4, delivered: 4 })
  })

  it('counts a send to a peer that is not connected as failed', async () => {
    const net = await network(1, ['chatty'])
    const bot = createBot(net.peers[0]!)
    const handle = chatter(bot, { interval: 1, count: 2, to: 'nobody' })
    await handle.done
    expect(bot.stats).toMatchObject({ sent: 2, delivered: 0, failed: 2 })
  })

  it('rejects a count or interval out of range', async () => {
    const net = await network(1)
    const bot = createBot(net.peers[0]!)
    expect(() => chatter(bot, { count: 0 })).toThrow(expect.objectContaining({ code: 'USAGE' }))
    expect(() => chatter(bot, { interval: 0.5 })).toThrow(expect.objectContaining({ code: 'USAGE' }))
  })
})

describe('relay', () => {
  it('forwards A → relay → C, naming the origin, and not back to A', async () => {
    const net = await network(3, ['a', 'relay', 'c'])
    const [a, r, c] = net.peers as [(typeof net.peers)[0], (typeof net.peers)[0], (typeof net.peers)[0]]
    const bot = createBot(r)
    relay(bot)
    await net.connect(a, r)
    await net.connect(c, r)
    const aGot = inbox(a)
    const cGot = waitFor(c, 'message')

    await a.send(r.id, 'hi C')

    const m = await cGot
    expect(m.text).toBe('↪ a: hi C')
    expect(m.from.name).toBe('relay')
    await bot.traffic.idle()
    expect(aGot.messages).toEqual([])
    expect(bot.stats).toMatchObject({ sent: 1, delivered: 1, received: 1 })
  })

  it('does not loop in a triangle of relays: each forwards a message once, nothing returns to its origin', async () => {
    const net = await network(4, ['r0', 'r1', 'r2', 'x'])
    const [r0, r1, r2, x] = net.peers as [
      (typeof net.peers)[0],
      (typeof net.peers)[0],
      (typeof net.peers)[0],
      (typeof net.peers)[0],
    ]
    const traffic = new Traffic()
    const bots = [r0, r1, r2].map((p) => createBot(p, { traffic }))
    for (const b of bots) relay(b)
    await net.connect(r0, r1)
    await net.connect(r1, r2)
    await net.connect(r2, r0)
    await net.connect(x, r0)
    const xGot = inbox(x)
    const r1Got = inbox(r1)
    const r2Got = inbox(r2)

    await x.send(r0.id, 'hello relays')
    await traffic.idle()

    // r0 forwards to r1 and r2 (not back to x); r1 and r2 each forward once, to the one relay that is
    // neither the sender nor the origin; every later copy is recognised and dropped, so traffic settles.
    expect(bots.map((b) => b.stats.sent)).toEqual([2, 1, 1])
    expect(bots.reduce((n, b) => n + b.stats.received, 0)).toBe(5)
    expect(r1Got.texts()).toContain('↪ x: hello relays')
    expect(r2Got.texts()).toContain('↪ x: hello relays')
    expect(xGot.messages).toEqual([])
  })

  it('parses relayed texts back into origin and body', () => {
    expect(parseRelayed('↪ alice: hi: there', 'r')).toEqual({ origin: 'alice', body: 'hi: there' })
    expect(parseRelayed('↪ alice (via r1): hi', 'r2')).toEqual({ origin: 'alice', body: 'hi' })
    expect(parseRelayed('plain', 'bob')).toEqual({ origin: 'bob', body: 'plain' })
  })

  it('an echo bot on each side of a relay does not answer the other through it: one message in, a few out', async () => {
    const net = await network(5, ['relay', 'echo1', 'echo2', 'bystander', 'mallory'])
    const [r, e1, e2, bystander, mallory] = net.peers as (typeof net.peers)[0][]
    const traffic = new Traffic()
    relay(createBot(r!, { traffic }))
    echo(createBot(e1!, { traffic }))
    echo(createBot(e2!, { traffic }))
    for (const p of [e1, e2, bystander, mallory]) await net.connect(p!, r!)
    const heard = inbox(bystander!)

    await mallory!.send(r!.id, 'x')
    await traffic.idle()

    // x, and each echo's answer to it, once each: before, the echoes answered each other through the
    // relay, a longer text every hop, until the text limit (about 4,300 hops).
    expect(heard.texts().sort()).toEqual(
      ['↪ mallory: x', '↪ echo1: echo: ↪ mallory: x', '↪ echo2: echo: ↪ mallory: x'].sort(),
    )
  })

  it('says who passed on a text that names another origin, and sends no more than its rate', async () => {
    const net = await network(4, ['relay', 'mallory', 'bob', 'alice'])
    const [r, mallory, bob, alice] = net.peers as (typeof net.peers)[0][]
    const bot = createBot(r!)
    relay(bot, { rate: { perSecond: 0.001, burst: 4 } })
    for (const p of [mallory, bob, alice]) await net.connect(p!, r!)
    const bobGot = inbox(bob!)

    await mallory!.send(r!.id, '↪ alice: bob, send the deploy key to mallory@evil')
    await bobGot.waitForCount(1)
    expect(bobGot.texts()).toEqual(['↪ alice (via mallory): bob, send the deploy key to mallory@evil'])

    // Two deliveries each (bob and alice): the burst of four is spent after two more texts.
    for (let i = 0; i < 5; i++) await mallory!.send(r!.id, `spam ${i}`)
    await bot.traffic.idle()
    expect(bobGot.texts()).toEqual([
      '↪ alice (via mallory): bob, send the deploy key to mallory@evil',
      '↪ mallory: spam 0',
    ])
  })
})
