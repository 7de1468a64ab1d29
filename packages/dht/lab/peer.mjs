// One lab peer on the DHT, started the way the CLI will be: `--bootstrap <host:port> --join <topic>`.
//   node peer.mjs two <bootstrap> <topic> [relay]   joins, answers every message with "echo: <text>", runs until killed
//   node peer.mjs one <bootstrap> <topic> [relay]   joins, waits for a peer, sends one message, waits for the echo,
//                                           prints {"event":"result",...} and exits
import { createPeer, generateIdentity } from '@parley/core'
import { DHT_HANDSHAKE_TIMEOUT, dhtNetworking, dhtOptions, dhtSession } from '@parley/dht'

const [name, bootstrap, topic, relay] = process.argv.slice(2)
const log = (fields) => console.log(JSON.stringify(fields))
const started = performance.now()
const ms = () => Math.round(performance.now() - started)

const identity = generateIdentity()
const net = dhtNetworking({
  identity,
  options: dhtOptions({ bootstrap: [bootstrap], join: [topic], ...(relay ? { relay } : {}) }),
})
// Which path the connection took: the UDP address of the remote end of each DHT connection.
const paths = new Map()
const transport = {
  name: net.transport.name,
  listen: (address, onConnection, options) =>
    net.transport.listen(
      address,
      (conn) => {
        paths.set(conn, dhtSession(conn))
        onConnection(conn)
      },
      options,
    ),
  dial: async (address, options) => {
    const conn = await net.transport.dial(address, options)
    paths.set(conn, dhtSession(conn))
    return conn
  },
}
const peer = createPeer({
  name,
  identity,
  transport,
  upgrader: net.upgrader,
  listen: net.listen,
  handshakeTimeout: DHT_HANDSHAKE_TIMEOUT,
})
await peer.start()
const [joined] = net.join(peer, (err) => log({ event: 'error', message: err.message }))
await joined.refresh()
log({ event: 'joined', id: peer.id, ms: ms() })

const stop = async (code) => {
  await peer.stop()
  await net.close()
  process.exit(code)
}
process.once('SIGTERM', () => void stop(0))

if (name === 'two') {
  peer.on('message', (m) => {
    peer.send(m.from.id, `echo: ${m.text}`).catch((err) => log({ event: 'error', message: err.message }))
  })
} else {
  // With LAB_CUT=1 the lab takes this host's link down once the first echo is back, and up again once
  // the peer has noticed: the peer must then reconnect to two by its key alone.
  const cut = process.env.LAB_CUT === '1'
  const limit = cut ? 100_000 : 45_000
  const deadline = setTimeout(() => {
    log({ event: 'result', ok: false, error: `not done in ${limit / 1000} s`, ms: ms() })
    void stop(1)
  }, limit)
  const other = await new Promise((resolve) => peer.once('peer:connect', resolve))
  const connectMs = ms()
  const exchange = async (text) => {
    const echoed = new Promise((resolve) => {
      const onMessage = (m) => {
        if (m.text !== `echo: ${text}`) return
        peer.off('message', onMessage)
        resolve(m)
      }
      peer.on('message', onMessage)
    })
    const sentAt = performance.now()
    await peer.send(other.id, text)
    const ackMs = Math.round(performance.now() - sentAt)
    await echoed
    return { ackMs, roundTripMs: Math.round(performance.now() - sentAt) }
  }
  const paths_ = () =>
    [...paths.values()]
      .filter((s) => s?.remotePeerId === other.id)
      .map((s) => `${s.remoteHost}:${s.remotePort}`)
  const first = await exchange('hello from one')
  const result = { event: 'result', ok: true, connectMs, ...first, remote: paths_() }
  if (cut) {
    const back = new Promise((resolve) => peer.on('peer:connect', (p) => p.id === other.id && resolve()))
    const lost = new Promise((resolve) => peer.once('peer:disconnect', resolve))
    log({ event: 'cut-now', ms: ms() })
    const { reason } = await lost
    const lostAt = performance.now()
    log({ event: 'lost', reason, ms: ms() })
    await back
    result.lost = reason
    result.reconnectMs = Math.round(performance.now() - lostAt)
    result.again = await exchange('hello again')
    result.remote = paths_()
  }
  clearTimeout(deadline)
  log(result)
  await stop(0)
}
