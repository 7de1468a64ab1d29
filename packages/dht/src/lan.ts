import { EventEmitter } from 'node:events'
import { isIPv4 } from 'node:net'
import { networkInterfaces } from 'node:os'
import { type Peer, TokenBucket } from '@parley/core'
import makeMdns from 'multicast-dns'

/** Options of {@link lanDiscovery}. */
export interface LanDiscoveryInit {
  /** Our peer id: announced, and our own records are ignored. */
  peerId: string
  /** Our TCP addresses (`host:port`); their ports are announced. Read at every answer. */
  addresses: () => readonly string[]
  /** Distinct peers remembered at most; later ones are ignored until older ones expire. @default 64 */
  maxPeers?: number
  /** Time between our queries, in milliseconds (at least 1_000). @default 30_000 */
  interval?: number
  /** IPv4 address of the interface to use. @default every interface (multicast-dns's default) */
  interface?: string
  /** UDP port. @default 5353 (mDNS) */
  port?: number
  /**
   * Whether we are connected to a peer id now. While we are, another host may take over its entry
   * (the entry is not needed to reach it); otherwise the first host heard keeps an id until it expires.
   * @default never connected
   */
  connected?: (id: string) => boolean
}

/** A peer found on the LAN. */
export interface LanPeer {
  /** The peer id it claims: a hint only, the handshake proves who answers. */
  readonly id: string
  /** `host:port` to dial: always the address the record came from, with an announced port. */
  readonly addresses: readonly string[]
}

/** Events of a {@link LanDiscovery}. */
export interface LanEvents {
  /** A peer heard, new or again, from the host that holds its id (records from other hosts are dropped). */
  peer: [peer: LanPeer]
  /** A socket error (the discovery keeps running). Only emitted when listened to. */
  error: [error: Error]
}

/** LAN discovery by mDNS, until {@link LanDiscovery.stop}. */
export interface LanDiscovery extends EventEmitter<LanEvents> {
  /** The peers heard from within the last three query intervals, older records dropped. */
  peers(): LanPeer[]
  /** Asks the LAN now, unless we asked less than a second ago. */
  query(): void
  /** Stops answering and asking, and closes the socket. Idempotent. */
  stop(): Promise<void>
}

/** The DNS-SD service type of Parley peers. */
export const LAN_SERVICE = '_parley._tcp.local'
const DEFAULT_MAX_PEERS = 64
const DEFAULT_INTERVAL = 30_000
const MIN_INTERVAL = 1_000
/** One host (one source address) may speak for this many peer ids at most. */
const MAX_IDS_PER_HOST = 4
/** Ports announced (and accepted) per record. */
const MAX_PORTS = 4
/** TXT strings accepted per record: v, id and the ports. */
const MAX_TXT_STRINGS = 2 + MAX_PORTS
/** Queries answered at most once per this many milliseconds. */
const ANSWER_GAP = 1_000
const MDNS_GROUP = '224.0.0.251'
const PEER_ID = /^[0-9a-f]{64}$/
const PORT = /^[1-9][0-9]{0,4}$/

/**
 * Finds Parley peers on the local network by multicast DNS (`_parley._tcp.local`) and announces this
 * one, without any address or DHT. Each record is a TXT of `v=1`, `id=<peer id>` and up to four
 * `port=<n>`; a peer found is dialable at the address its record came from, with those ports.
 *
 * What a hostile LAN host can do is bounded, not prevented:
 * - it can make us dial **on-subnet addresses only**: the host dialed is the packet's source address,
 *   never an address from the record, and only a source on the subnet of one of our own interfaces
 *   counts. A multicast packet's source is easy to spoof on a LAN, so it can steer dials at any host
 *   of our subnets (not only itself): at most `maxPeers` (64) ids at once, each with at most 4 ports,
 *   and {@link joinLan} dials each id (at its first port) at most once every 30 s, and at most
 *   `maxPeers` ids per 30 s in all;
 * - the first host heard for an id keeps it until the entry expires (three intervals unheard) or we
 *   are connected to that id, so a later answer cannot take over an honest peer's entry;
 * - records are parsed strictly (exact shapes, at most 6 TXT strings, at most 4 ports; anything else
 *   is dropped whole), at most `maxPeers` peers are kept and at most 4 ids per source address; a full
 *   table forgets one id of the hosts holding the most, so a flood cannot keep newcomers out;
 * - queries are answered at most once a second, so it cannot make us flood the LAN;
 * - the id it claims is only a hint: the handshake of the dial authenticates whoever answers, so the
 *   worst case is a bounded number of dial attempts to hosts on our subnets.
 */
export function lanDiscovery(init: LanDiscoveryInit): LanDiscovery {
  if (!PEER_ID.test(init.peerId)) throw new TypeError('peerId must be 64 lowercase hex characters')
  return new MdnsDiscovery(init)
}

interface Entry {
  peer: LanPeer
  host: string
  seen: number
}

class MdnsDiscovery extends EventEmitter<LanEvents> implements LanDiscovery {
  readonly #init: LanDiscoveryInit
  readonly #mdns: makeMdns.MulticastDNS
  readonly #entries = new Map<string, Entry>()
  readonly #maxPeers: number
  readonly #interval: number
  readonly #timer: ReturnType<typeof setInterval>
  #lastAnswer = 0
  #lastQuery = 0
  #stopped = false

  constructor(init: LanDiscoveryInit) {
    super()
    this.#init = init
    this.#maxPeers = Math.max(1, init.maxPeers ?? DEFAULT_MAX_PEERS)
    this.#interval = Math.max(MIN_INTERVAL, init.interval ?? DEFAULT_INTERVAL)
    this.#mdns = makeMdns({
      // Bound to the group, so unicast datagrams to the port are never read.
      bind: MDNS_GROUP,
      ...(init.interface !== undefined ? { interface: init.interface } : {}),
      ...(init.port !== undefined ? { port: init.port } : {}),
    })
    this.#mdns.on('error', (err: Error) => {
      if (this.listenerCount('error') > 0) this.emit('error', err)
    })
    // Malformed packets: dropped (multicast-dns reports them as warnings).
    this.#mdns.on('warning', () => {})
    this.#mdns.on('query', (packet) => this.#onQuery(packet))
    this.#mdns.on('response', (packet, rinfo) => this.#onResponse(packet, rinfo.address))
    this.#mdns.on('ready', () => {
      this.#announce()
      this.query()
    })
    this.#timer = setInterval(() => {
      this.#expire()
      this.query()
    }, this.#interval)
    this.#timer.unref?.()
  }

  peers(): LanPeer[] {
    this.#expire()
    return [...this.#entries.values()].map((e) => e.peer)
  }

  query(): void {
    if (this.#stopped || Date.now() - this.#lastQuery < MIN_INTERVAL) return
    this.#lastQuery = Date.now()
    this.#mdns.query({ questions: [{ name: LAN_SERVICE, type: 'PTR' }] })
  }

  stop(): Promise<void> {
    if (this.#stopped) return Promise.resolve()
    this.#stopped = true
    clearInterval(this.#timer)
    this.#entries.clear()
    return new Promise((resolve) => this.#mdns.destroy(() => resolve()))
  }

  #onQuery(packet: { questions?: Array<{ name: string; type: string }> }): void {
    const asked = (packet.questions ?? []).some(
      (q) => q.name.toLowerCase() === LAN_SERVICE && (q.type === 'PTR' || q.type === 'ANY'),
    )
    if (!asked) return
    const now = Date.now()
    if (now - this.#lastAnswer < ANSWER_GAP) return
    this.#lastAnswer = now
    this.#announce()
  }

  #announce(): void {
    if (this.#stopped) return
    const ports = announcedPorts(this.#init.addresses())
    if (ports.length === 0) return
    const id = this.#init.peerId
    const instance = `${id.slice(0, 16)}.${LAN_SERVICE}`
    const ttl = Math.ceil((this.#interval * 3) / 1000)
    this.#mdns.respond({
      answers: [
        { name: LAN_SERVICE, type: 'PTR', ttl, data: instance },
        { name: instance, type: 'TXT', ttl, data: ['v=1', `id=${id}`, ...ports.map((p) => `port=${p}`)] },
      ],
    })
  }

  #onResponse(packet: { answers?: unknown[]; additionals?: unknown[] }, source: string): void {
    if (this.#stopped || !onLocalSubnet(source)) return
    const records = [...(packet.answers ?? []), ...(packet.additionals ?? [])].slice(0, 16)
    for (const record of records) {
      const parsed = parseRecord(record)
      if (parsed === undefined || parsed.id === this.#init.peerId) continue
      this.#add(parsed.id, source, parsed.ports)
    }
  }

  #add(id: string, host: string, ports: number[]): void {
    this.#expire()
    const now = Date.now()
    const known = this.#entries.get(id)
    const peer: LanPeer = { id, addresses: ports.map((p) => `${host}:${p}`) }
    if (known !== undefined && known.host === host) {
      known.seen = now
      known.peer = peer
      this.emit('peer', peer)
      return
    }
    // A known id from another host: the first host keeps it until it expires, unless we are connected
    // to that id (then the entry is not needed to reach it, e.g. a peer that moved). Otherwise any host
    // could take over an honest peer's entry by answering after it.
    if (known !== undefined && this.#init.connected?.(id) !== true) return
    if (this.#fromHost(host) >= MAX_IDS_PER_HOST) return
    if (known === undefined && this.#entries.size >= this.#maxPeers) this.#makeRoom()
    this.#entries.set(id, { peer, host, seen: now })
    this.emit('peer', peer)
  }

  /**
   * Full: a random entry of the hosts holding the most ids makes room. Refusing newcomers let one host
   * answering from a few addresses (its own, or spoofed) keep every honest peer out for as long as it
   * kept answering; taking from the largest hosts first spares peers that answer for themselves alone.
   */
  #makeRoom(): void {
    const byHost = new Map<string, string[]>()
    for (const [id, e] of this.#entries) {
      const ids = byHost.get(e.host)
      if (ids) ids.push(id)
      else byHost.set(e.host, [id])
    }
    let most = 0
    for (const ids of byHost.values()) most = Math.max(most, ids.length)
    const victims: string[] = []
    for (const ids of byHost.values()) if (ids.length === most) victims.push(...ids)
    this.#entries.delete(victims[Math.floor(Math.random() * victims.length)]!)
  }

  #fromHost(host: string): number {
    let n = 0
    for (const e of this.#entries.values()) if (e.host === host) n++
    return n
  }

  #expire(): void {
    const oldest = Date.now() - this.#interval * 3
    for (const [id, e] of this.#entries) if (e.seen < oldest) this.#entries.delete(id)
  }
}

/** The distinct TCP ports of `host:port` addresses (not `dht:`), at most four. */
function announcedPorts(addresses: readonly string[]): number[] {
  const ports = new Set<number>()
  for (const address of addresses) {
    if (address.startsWith('dht:')) continue
    const m = /:([0-9]{1,5})$/.exec(address)
    const port = Number(m?.[1])
    if (port >= 1 && port <= 65535) ports.add(port)
    if (ports.size >= MAX_PORTS) break
  }
  return [...ports]
}

/** A Parley TXT record, strictly: anything else is undefined. */
function parseRecord(record: unknown): { id: string; ports: number[] } | undefined {
  const r = record as { name?: unknown; type?: unknown; data?: unknown }
  if (r.type !== 'TXT' || typeof r.name !== 'string') return undefined
  const name = r.name.toLowerCase()
  if (!name.endsWith(`.${LAN_SERVICE}`)) return undefined
  const data = r.data
  if (!Array.isArray(data) || data.length < 3 || data.length > MAX_TXT_STRINGS) return undefined
  let version: string | undefined
  let id: string | undefined
  const ports: number[] = []
  for (const item of data) {
    if (!Buffer.isBuffer(item) || item.length > 80) return undefined
    const text = item.toString('latin1')
    const eq = text.indexOf('=')
    const key = text.slice(0, eq)
    const value = text.slice(eq + 1)
    if (eq < 0) return undefined
    if (key === 'v' && version === undefined) version = value
    else if (key === 'id' && id === undefined) id = value
    else if (key === 'port' && PORT.test(value) && Number(value) <= 65535) ports.push(Number(value))
    else return undefined
  }
  if (version !== '1' || id === undefined || !PEER_ID.test(id) || ports.length === 0) return undefined
  if (name !== `${id.slice(0, 16)}.${LAN_SERVICE}`) return undefined
  return { id, ports: [...new Set(ports)] }
}

/** How long the list of our own subnets is reused: reading it per packet costs a syscall each. */
const SUBNETS_TTL = 1_000
let subnets: { at: number; nets: Array<{ address: number; mask: number }> } | undefined

function localSubnets(): Array<{ address: number; mask: number }> {
  const now = Date.now()
  if (subnets !== undefined && now - subnets.at >= 0 && now - subnets.at < SUBNETS_TTL) return subnets.nets
  const nets: Array<{ address: number; mask: number }> = []
  for (const list of Object.values(networkInterfaces())) {
    for (const net of list ?? []) {
      if (net.family === 'IPv4')
        nets.push({ address: ipv4ToNumber(net.address), mask: ipv4ToNumber(net.netmask) })
    }
  }
  subnets = { at: now, nets }
  return nets
}

/** True when `address` is an IPv4 address on the subnet of one of this machine's interfaces. */
function onLocalSubnet(address: string): boolean {
  if (!isIPv4(address)) return false
  const target = ipv4ToNumber(address)
  return localSubnets().some((net) => ((net.address ^ target) & net.mask) >>> 0 === 0)
}

function ipv4ToNumber(address: string): number {
  return address.split('.').reduce((n, part) => ((n << 8) | Number(part)) >>> 0, 0)
}

/** Options of {@link joinLan}. */
export interface JoinLanOptions extends Omit<LanDiscoveryInit, 'peerId' | 'addresses'> {
  /** Called with each dial that failed (the peer is dialed again when heard again). */
  onError?: (err: Error) => void
}

/** How often one LAN peer is dialed at most, in milliseconds. */
const REDIAL_GAP = 30_000

/**
 * Puts a started peer on the LAN: announces its id and TCP ports by mDNS, and dials every Parley peer
 * found there that it is not connected to yet (one dial at a time per peer, at most one every 30 s).
 * The peer must listen on an address the LAN can reach (e.g. `0.0.0.0:<port>`). Call `stop()` before
 * `peer.stop()`.
 */
export function joinLan(peer: Peer, options: JoinLanOptions = {}): LanDiscovery {
  const { onError, ...rest } = options
  const connected = (id: string) => peer.peers().connected.some((p) => p.id === id)
  const lan = lanDiscovery({ ...rest, peerId: peer.id, addresses: () => peer.addresses, connected })
  const lastDial = new Map<string, number>()
  // At most a table's worth of dials per REDIAL_GAP in all: a full table takes newcomers (see #makeRoom),
  // so a host spoofing fresh ids from fresh addresses must not get a dial for each one.
  const maxPeers = Math.max(1, rest.maxPeers ?? DEFAULT_MAX_PEERS)
  const budget = new TokenBucket(maxPeers / (REDIAL_GAP / 1000), maxPeers)
  const dial = (found: LanPeer) => {
    if (peer.status !== 'running' || connected(found.id)) return
    const last = lastDial.get(found.id)
    if (last !== undefined && Date.now() - last < REDIAL_GAP) return
    // Over the budget: not dialed now; it is reported again with its next answer.
    if (!budget.take()) return
    lastDial.set(found.id, Date.now())
    // Bounded like the discovery: forget the oldest dial times beyond its peer limit.
    if (lastDial.size > maxPeers) lastDial.delete(lastDial.keys().next().value!)
    const [address] = found.addresses
    if (address === undefined) return
    peer.connect(address).catch((err: Error) => onError?.(err))
  }
  lan.on('peer', dial)
  return lan
}
