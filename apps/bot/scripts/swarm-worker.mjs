// One child process of `bot swarm --processes K` (src/swarm/processes.ts): runs its share of the bots
// as mesh peers over TCP and answers the parent over IPC. Plain JavaScript, so that the parent can fork
// it whether it runs from src (tests) or dist; it imports only built packages (@parley/core, @parley/mesh).
import { setMaxListeners } from 'node:events'
import { plaintextUpgrader, tcpTransport } from '@parley/core'
import { createMeshPeer, seededRandom } from '@parley/mesh'

/** Contact dials in flight at once in this process while the overlay forms. */
const JOIN_CONCURRENCY = 8

/** @type {Map<number, import('@parley/mesh').MeshPeer>} */
const peers = new Map()
/** Probe tag → indices of the bots here that received it. */
const probes = new Map()
const counts = { handshakeTimeouts: 0, dialFailures: 0, skipped: 0, dialed: 0 }

function send(msg) {
  process.send?.(msg)
}

function count(err) {
  if (err?.code === 'HANDSHAKE_TIMEOUT') counts.handshakeTimeouts++
  else counts.dialFailures++
}

async function start({ indices, host, activeSize, seed, plaintext }) {
  for (const i of indices) {
    const peer = createMeshPeer({
      transport: tcpTransport(),
      name: `bot-${i}`,
      listen: `${host}:0`,
      ...(plaintext ? { upgrader: plaintextUpgrader() } : {}),
      mesh: { activeSize, random: seededRandom(seed * 100_003 + i) },
    })
    peer.on('error', (err) => {
      if (err.code === 'HANDSHAKE_TIMEOUT' || /timed out/.test(err.message)) counts.handshakeTimeouts++
    })
    peer.on('message', (m) => {
      if (!m.text.startsWith('probe ')) return
      const got = probes.get(m.text) ?? new Set()
      probes.set(m.text, got)
      got.add(i)
    })
    peers.set(i, peer)
  }
  await Promise.all([...peers.values()].map((p) => p.start()))
  send({ type: 'started', addrs: [...peers].map(([i, p]) => [i, p.addresses[0]]) })
}

async function join({ contacts }) {
  const queue = [...contacts]
  const worker = async () => {
    while (queue.length > 0) {
      const [i, addrs] = queue.shift()
      for (const addr of addrs) {
        try {
          await peers.get(i).connect(addr)
          break
        } catch (err) {
          count(err)
        }
      }
    }
  }
  await Promise.all(Array.from({ length: JOIN_CONCURRENCY }, worker))
  // Then every bot at once, as the measurement did.
  await Promise.all(
    [...peers.values()].map(async (p) => {
      try {
        const results = await p.connectToActive()
        counts.dialed += results.length
        counts.skipped += results.skipped.length
        for (const r of results) if (!r.ok) count(r.error)
      } catch (err) {
        count(err)
      }
    }),
  )
  send({ type: 'joined' })
}

function status() {
  const bots = [...peers].map(([i, p]) => ({
    i,
    id: p.id,
    active: p.status === 'running' ? p.mesh.active() : [],
    linked: p.status === 'running' ? p.peers().connected.map((c) => c.id) : [],
  }))
  send({
    type: 'status',
    bots,
    probes: Object.fromEntries([...probes].map(([tag, got]) => [tag, got.size])),
    rss: process.memoryUsage().rss,
    counts,
  })
}

async function stop() {
  const deadline = AbortSignal.timeout(5_000)
  setMaxListeners(0, deadline)
  await Promise.allSettled([...peers.values()].map((p) => p.stop({ signal: deadline })))
  send({ type: 'stopped' })
  process.disconnect?.()
  setTimeout(() => process.exit(0), 200).unref()
}

process.on('message', (msg) => {
  const fail = (err) => send({ type: 'failed', message: err instanceof Error ? err.message : String(err) })
  switch (msg.type) {
    case 'start':
      start(msg).catch(fail)
      return
    case 'join':
      join(msg).catch(fail)
      return
    case 'status':
      status()
      return
    case 'broadcast':
      peers
        .get(msg.index)
        .broadcast(msg.tag)
        .then(() => send({ type: 'broadcasted' }), fail)
      return
    case 'stop':
      stop().catch(fail)
      return
  }
})
// The parent went away: do not linger.
process.on('disconnect', () => {
  for (const p of peers.values()) p.destroy()
  process.exit(0)
})
send({ type: 'ready' })
