import makeMdns from 'multicast-dns'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { LAN_SERVICE, type LanDiscovery, type LanPeer, lanDiscovery } from '../src/index.js'

// What a hostile LAN host cannot do: take over an honest peer's entry, or make us answer a flood.
// Runs in the namespace of test/run-in-netns.sh (only `lo`, multicast on); Date alone is faked, so
// sockets and timers run as usual while the discovery's clock moves only when a test moves it.
const LAN = { interface: '127.0.0.1' }
const INTERVAL = 30_000
const T0 = 1_000_000_000

const hex = (c: string) => c.repeat(64)

/** A raw mDNS socket; `from` is its source address (any 127.x address is on lo's subnet). */
function rawMdns(from?: string): makeMdns.MulticastDNS {
  const mdns = makeMdns({ ...LAN, bind: from ?? '224.0.0.251' })
  onTestFinished(() => new Promise<void>((resolve) => mdns.destroy(() => resolve())))
  return mdns
}

function announce(mdns: makeMdns.MulticastDNS, id: string, port: number): void {
  mdns.respond({
    answers: [
      {
        name: `${id.slice(0, 16)}.${LAN_SERVICE}`,
        type: 'TXT',
        ttl: 90,
        data: ['v=1', `id=${id}`, `port=${port}`],
      },
    ],
  })
}

/** Resolves when `lan` reports `id` (a record it has processed: so have all packets sent before it). */
function heard(lan: LanDiscovery, id: string): Promise<LanPeer> {
  return new Promise((resolve) => lan.on('peer', (p) => p.id === id && resolve(p)))
}

function fakeClock(): void {
  vi.useFakeTimers({ toFake: ['Date'] })
  vi.setSystemTime(T0)
  onTestFinished(() => {
    vi.useRealTimers()
  })
}

describe('--lan discovery against a hostile host', () => {
  it('keeps the first host of an id: a later answer from another host does not take it over', async () => {
    fakeClock()
    const lan = lanDiscovery({ ...LAN, peerId: hex('a'), addresses: () => [], interval: INTERVAL })
    onTestFinished(() => lan.stop())
    const honest = rawMdns()
    const hostile = rawMdns('127.0.0.2')
    const found: LanPeer[] = []
    lan.on('peer', (p) => found.push(p))
    const id = hex('b')

    const first = heard(lan, id)
    announce(honest, id, 4000)
    await first
    announce(hostile, id, 6666)
    const mark = heard(lan, hex('c'))
    announce(hostile, hex('c'), 1)
    await mark
    expect(lan.peers().find((p) => p.id === id)?.addresses).toEqual(['127.0.0.1:4000'])
    expect(found.filter((p) => p.id === id).map((p) => p.addresses)).toEqual([['127.0.0.1:4000']])

    // Heard again from its own host, the honest entry stays; unheard for three intervals, it expires
    // and the id is free for the next host (a peer that moved).
    vi.setSystemTime(T0 + 3 * INTERVAL + 1)
    const moved = heard(lan, id)
    announce(hostile, id, 6666)
    expect((await moved).addresses).toEqual(['127.0.0.2:6666'])
  })

  it("a table full of one host's ids still takes an honest peer: a random entry makes room", async () => {
    const lan = lanDiscovery({ ...LAN, peerId: hex('a'), addresses: () => [], maxPeers: 4 })
    onTestFinished(() => lan.stop())
    const hostile = rawMdns('127.0.0.2')
    const last = heard(lan, hex('4'))
    for (const c of ['1', '2', '3', '4']) announce(hostile, hex(c), 1)
    await last
    expect(lan.peers()).toHaveLength(4)
    const honest = rawMdns()
    const found = heard(lan, hex('b'))
    announce(honest, hex('b'), 4000)
    expect((await found).addresses).toEqual(['127.0.0.1:4000'])
    // Room is taken from the host holding the most ids: a second honest peer does not push out the first.
    const other = rawMdns('127.0.0.3')
    const second = heard(lan, hex('c'))
    announce(other, hex('c'), 4001)
    await second
    expect(lan.peers().filter((p) => p.addresses[0]!.startsWith('127.0.0.2:'))).toHaveLength(2)
    expect(lan.peers().filter((p) => p.id === hex('b') || p.id === hex('c'))).toHaveLength(2)
  })

  it('lets another host take an id we are connected to', async () => {
    const id = hex('d')
    const lan = lanDiscovery({ ...LAN, peerId: hex('a'), addresses: () => [], connected: (p) => p === id })
    onTestFinished(() => lan.stop())
    const first = heard(lan, id)
    announce(rawMdns(), id, 4000)
    await first
    const moved = heard(lan, id)
    announce(rawMdns('127.0.0.3'), id, 4001)
    expect((await moved).addresses).toEqual(['127.0.0.3:4001'])
    expect(lan.peers().map((p) => p.addresses)).toEqual([['127.0.0.3:4001']])
  })

  it('answers queries at most once a second, however many arrive', async () => {
    fakeClock()
    const ours = hex('e')
    const asker = rawMdns()
    await new Promise((resolve) => asker.once('ready', resolve))
    // The port of each answer of ours that the asker hears, in order.
    const answers: string[] = []
    const waiters: Array<() => void> = []
    asker.on('response', (packet) => {
      for (const a of packet.answers) {
        if (a.type !== 'TXT' || a.name !== `${ours.slice(0, 16)}.${LAN_SERVICE}`) continue
        answers.push((a.data as Buffer[]).map((b) => b.toString()).find((t) => t.startsWith('port='))!)
        for (const wake of waiters.splice(0)) wake()
      }
    })
    const answered = (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => (answers.length >= n ? resolve() : waiters.push(check))
        check()
      })
    let port = 9
    const lan = lanDiscovery({
      ...LAN,
      peerId: ours,
      addresses: () => [`127.0.0.1:${port}`],
      interval: INTERVAL,
    })
    onTestFinished(() => lan.stop())
    // At start: its announcement, and its answer to its own first query.
    await answered(2)
    const flood = async (marker: string) => {
      for (let i = 0; i < 20; i++) asker.query({ questions: [{ name: LAN_SERVICE, type: 'PTR' }] })
      const done = heard(lan, marker)
      announce(asker, marker, 1)
      await done
    }
    await flood(hex('1')) // within the second of its last answer: none
    vi.setSystemTime(T0 + 1_000)
    await flood(hex('2')) // a second later: one
    // A last query, a second later, answered with another port: every answer before it has arrived.
    port = 10
    vi.setSystemTime(T0 + 2_000)
    asker.query({ questions: [{ name: LAN_SERVICE, type: 'PTR' }] })
    await new Promise<void>((resolve) => {
      const check = () => (answers.at(-1) === 'port=10' ? resolve() : waiters.push(check))
      check()
    })
    expect(answers).toEqual(['port=9', 'port=9', 'port=9', 'port=10'])
  })
})
