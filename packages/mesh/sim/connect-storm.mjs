#!/usr/bin/env node
// The issue-13 table, re-measured with mesh peers (createMeshPeer) in one process on the in-memory
// transport: every peer dials one random earlier peer, then ALL call connectToActive() at once; once
// the sessions connect everyone, two peers broadcast and each broadcast's reach is counted.
//
//   node sim/connect-storm.mjs --peers 1000 [--seed 1] [--upgrader noise|plaintext] [--time-limit 300]
//
// Progress on stderr, one JSON line on stdout. Not part of pnpm test (build first: pnpm build).
import { parseArgs } from 'node:util'
import { memoryNetwork, memoryTransport, plaintextUpgrader } from '@parley/core'
import { createMeshPeer, seededRandom } from '@parley/mesh'

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== '--'),
  options: {
    peers: { type: 'string', default: '100' },
    seed: { type: 'string', default: '1' },
    upgrader: { type: 'string' },
    'time-limit': { type: 'string', default: '300' },
  },
})
const n = Number(values.peers)
const seed = Number(values.seed)
if (!Number.isInteger(n) || n < 2 || !Number.isInteger(seed)) {
  console.error('--peers is an integer of at least 2, --seed an integer')
  process.exit(2)
}
const upgrader = values.upgrader ?? (n <= 1000 ? 'noise' : 'plaintext')
const began = Date.now()
const deadline = began + Number(values['time-limit']) * 1000
const random = seededRandom(seed)
const log = (line) => console.error(`[storm ${((Date.now() - began) / 1000).toFixed(1)}s] ${line}`)
const counts = { handshakeTimeouts: 0, dialFailures: 0, dialed: 0, skipped: 0 }
const countError = (err) => {
  if (err?.code === 'HANDSHAKE_TIMEOUT') counts.handshakeTimeouts++
  else counts.dialFailures++
}

const network = memoryNetwork()
const peers = []
for (let i = 0; i < n; i++) {
  const peer = createMeshPeer({
    transport: memoryTransport(network, { host: `h${i}` }),
    listen: `h${i}:0`,
    name: `p${i}`,
    ...(upgrader === 'plaintext' ? { upgrader: plaintextUpgrader() } : {}),
    mesh: { random: seededRandom(seed * 100_003 + i) },
  })
  peer.on('error', (err) => {
    if (err.code === 'HANDSHAKE_TIMEOUT') counts.handshakeTimeouts++
  })
  peers.push(peer)
}
await Promise.all(peers.map((p) => p.start()))
log(`${n} peers started (${upgrader})`)

// 1. Each peer dials one random earlier peer (16 dials in flight, as a joining crowd would).
const formationStart = Date.now()
let next = 1
await Promise.all(
  Array.from({ length: 16 }, async () => {
    while (next < n) {
      const i = next++
      // A random earlier peer; two more if it fails, as a user would retry.
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await peers[i].connect(peers[Math.floor(random() * i)].addresses[0])
          break
        } catch (err) {
          countError(err)
        }
      }
    }
  }),
)
log('every peer dialed its contact; all call connectToActive() now')
// 2. Everyone at once.
await Promise.all(
  peers.map(async (p) => {
    try {
      const results = await p.connectToActive()
      counts.dialed += results.length
      counts.skipped += results.skipped.length
      for (const r of results) if (!r.ok) countError(r.error)
    } catch (err) {
      countError(err)
    }
  }),
)
log(`connectToActive returned everywhere (${counts.dialed} dials, ${counts.skipped} peers not dialed)`)

function parts() {
  const index = new Map(peers.map((p, i) => [p.id, i]))
  const seen = new Uint8Array(n)
  let count = 0
  for (let s = 0; s < n; s++) {
    if (seen[s]) continue
    count++
    seen[s] = 1
    const queue = [s]
    while (queue.length > 0) {
      const p = peers[queue.pop()]
      for (const c of p.peers().connected) {
        const j = index.get(c.id)
        if (j !== undefined && !seen[j]) {
          seen[j] = 1
          queue.push(j)
        }
      }
    }
  }
  return count
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
let formed = false
let lastParts = 0
const formDeadline = began + (deadline - began) * 0.85
while (Date.now() < formDeadline) {
  const alone = peers.filter((p) => p.mesh.active().length === 0).length
  const count = parts()
  lastParts = count
  if (alone === 0 && count === 1) {
    formed = true
    break
  }
  log(`forming: ${alone} peers without a mesh neighbour, ${count} parts`)
  await sleep(1000)
}
const formationSeconds = formed ? Math.round((Date.now() - formationStart) / 100) / 10 : null
log(formed ? `formed in ${formationSeconds} s` : 'not formed in time')

// 3. Two broadcasts, one after the other.
const reach = []
// Even when not formed: the reach then shows what the parts cost.
for (let b = 0; b < 2; b++) {
  const origin = peers[Math.floor(random() * n)]
  const text = `storm probe ${b}`
  const got = new Set()
  const listeners = peers.map((p, i) => {
    const on = (m) => {
      if (m.text === text) got.add(i)
    }
    p.on('message', on)
    return on
  })
  await origin.broadcast(text)
  let last = -1
  let grewAt = Date.now()
  while (got.size < n - 1 && Date.now() - grewAt < 5_000 && Date.now() < deadline) {
    if (got.size !== last) {
      last = got.size
      grewAt = Date.now()
    }
    await sleep(100)
  }
  for (const [i, p] of peers.entries()) p.off('message', listeners[i])
  reach.push(Math.round((got.size / (n - 1)) * 10_000) / 10_000)
  log(`broadcast ${b + 1} reached ${got.size} of ${n - 1}`)
}

const degrees = peers.map((p) => p.peers().connected.length)
const result = {
  peers: n,
  upgrader,
  formationSeconds,
  parts: formed ? 1 : lastParts,
  handshakeTimeouts: counts.handshakeTimeouts,
  dialFailures: counts.dialFailures,
  connectToActiveDials: counts.dialed,
  notDialed: counts.skipped,
  links: degrees.reduce((a, b) => a + b, 0) / 2,
  maxDegree: Math.max(...degrees),
  minDegree: Math.min(...degrees),
  maxActive: Math.max(...peers.map((p) => p.mesh.active().length)),
  reach,
  rssMB: Math.round(process.memoryUsage().rss / 2 ** 20),
  seconds: Math.round((Date.now() - began) / 100) / 10,
}
console.log(JSON.stringify(result))
for (const p of peers) p.destroy()
process.exit(formed && reach.every((r) => r === 1) ? 0 : 1)
