import { createPeer, type Peer, tcpTransport } from '@parley/core'
import { waitFor } from '@parley/testing'
import makeMdns from 'multicast-dns'
import { describe, expect, it, onTestFinished } from 'vitest'
import { joinLan, LAN_SERVICE, type LanPeer, lanDiscovery } from '../src/index.js'

// The namespace of test/run-in-netns.sh has only `lo`, with multicast turned on: mDNS stays in it.
const LAN = { interface: '127.0.0.1', interval: 1_000 }

async function tcpPeer(name: string): Promise<Peer> {
  const peer = createPeer({ name, transport: tcpTransport(), listen: '127.0.0.1:0' })
  await peer.start()
  onTestFinished(() => peer.stop())
  return peer
}

/** A raw mDNS socket on the same LAN, playing a hostile host. */
function rawMdns(): makeMdns.MulticastDNS {
  const mdns = makeMdns({ interface: '127.0.0.1', bind: '224.0.0.251' })
  onTestFinished(() => new Promise<void>((resolve) => mdns.destroy(() => resolve())))
  return mdns
}

const hex = (c: string) => c.repeat(64)

function record(id: string, strings: string[], name = `${id.slice(0, 16)}.${LAN_SERVICE}`) {
  return { name, type: 'TXT' as const, ttl: 90, data: strings }
}

describe('--lan: peers on one LAN find each other by mDNS', () => {
  it('two peers started with no address find each other, connect and talk', async () => {
    const alice = await tcpPeer('alice')
    const bob = await tcpPeer('bob')
    const lanA = joinLan(alice, LAN)
    const lanB = joinLan(bob, LAN)
    onTestFinished(async () => {
      await lanA.stop()
      await lanB.stop()
    })
    const connected = await waitFor(alice, 'peer:connect')
    expect(connected.id).toBe(bob.id)
    const got = waitFor(bob, 'message')
    await alice.send(bob.id, 'hello over the LAN')
    expect(await got).toMatchObject({ text: 'hello over the LAN', from: { id: alice.id } })
  })

  it('a record steers dials only to the host it came from, and malformed records are dropped whole', async () => {
    const ours = hex('a')
    const lan = lanDiscovery({ ...LAN, peerId: ours, addresses: () => [] })
    onTestFinished(() => lan.stop())
    const hostile = rawMdns()
    const found: LanPeer[] = []
    lan.on('peer', (p) => found.push(p))
    const good = hex('b')
    const done = hex('c')
    hostile.respond({
      answers: [
        record(hex('d'), ['v=1', `id=${hex('d')}`, 'port=70000']), // port out of range
        record(hex('e'), ['v=1', `id=${hex('e')}`, 'port=1', 'host=203.0.113.9']), // unknown key
        record(hex('f'), ['v=2', `id=${hex('f')}`, 'port=1']), // unknown version
        record(hex('1'), ['v=1', `id=${hex('1')}`, 'port=1'], `x.${LAN_SERVICE}`), // name not its id
        record('B'.repeat(64), ['v=1', `id=${'B'.repeat(64)}`, 'port=1']), // not lower-case hex
        record(hex('3'), ['v=1', `id=${hex('3')}`, 'port=1', 'port=2', 'port=3', 'port=4', 'port=5']), // 5 ports
        record(ours, ['v=1', `id=${ours}`, 'port=9']), // our own id
        record(good, ['v=1', `id=${good}`, 'port=4000', 'port=4001']),
      ],
    })
    hostile.respond({ answers: [record(done, ['v=1', `id=${done}`, 'port=5'])] })
    await new Promise<void>((resolve) => lan.on('peer', (p) => p.id === done && resolve()))
    expect(found.map((p) => p.id)).toEqual([good, done])
    // The address is the packet's source: no record can name another host.
    expect(found[0]!.addresses).toEqual(['127.0.0.1:4000', '127.0.0.1:4001'])
  })

  it('one host speaks for four peer ids at most', async () => {
    const lan = lanDiscovery({ ...LAN, peerId: hex('a'), addresses: () => [] })
    onTestFinished(() => lan.stop())
    const hostile = rawMdns()
    const ids = Array.from({ length: 12 }, (_, i) => i.toString(16).padStart(2, '0').repeat(32))
    const reported = new Set<string>()
    lan.on('peer', (p) => reported.add(p.id))
    const heardAgain = (id: string) =>
      new Promise<void>((resolve) => lan.on('peer', (p) => p.id === id && resolve()))
    hostile.respond({ answers: ids.slice(0, 8).map((id) => record(id, ['v=1', `id=${id}`, 'port=1'])) })
    hostile.respond({ answers: ids.slice(8).map((id) => record(id, ['v=1', `id=${id}`, 'port=1'])) })
    // A record heard again is reported again: it marks that the packets before it were processed.
    const marker = heardAgain(ids[0]!)
    hostile.respond({ answers: [record(ids[0]!, ['v=1', `id=${ids[0]}`, 'port=1'])] })
    await marker
    expect(lan.peers().map((p) => p.id)).toEqual(ids.slice(0, 4))
    expect([...reported]).toEqual(ids.slice(0, 4))
  })

  it('answers a query with our id and the ports we listen on', async () => {
    const ours = hex('7')
    const lan = lanDiscovery({
      ...LAN,
      peerId: ours,
      addresses: () => ['127.0.0.1:4100', 'dht:'.padEnd(68, '0'), '[::1]:4100', '10.0.0.1:4200'],
    })
    onTestFinished(() => lan.stop())
    const asker = rawMdns()
    const answer = new Promise<string[]>((resolve) =>
      asker.on('response', (packet) => {
        for (const a of packet.answers) {
          if (a.type === 'TXT' && a.name === `${ours.slice(0, 16)}.${LAN_SERVICE}`) {
            resolve((a.data as Buffer[]).map((b) => b.toString()))
          }
        }
      }),
    )
    asker.query({ questions: [{ name: LAN_SERVICE, type: 'PTR' }] })
    expect(await answer).toEqual(['v=1', `id=${ours}`, 'port=4100', 'port=4200'])
  })
})
