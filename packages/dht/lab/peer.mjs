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
  const deadline = setTimeout(() => {
    log({ event: 'result', ok: false, error: 'no peer connected in 45 s', ms: ms() })
    void stop(1)
  }, 45_000)
  const other = await new Promise((resolve) => peer.once('peer:connect', resolve))
  const connectMs = ms()
  const echoed = new Promise((resolve) =>
    peer.on('message', (m) => m.text.startsWith('echo: ') && resolve(m)),
  )
  const sentAt = performance.now()
  await peer.send(other.id, 'hello from one')
  const ackMs = Math.round(performance.now() - sentAt)
  const echo = await echoed
  const roundTripMs = Math.round(performance.now() - sentAt)
  clearTimeout(deadline)
  const sessions = [...paths.values()].filter((s) => s?.remotePeerId === other.id)
  const remote = sessions.map((s) => `${s.remoteHost}:${s.remotePort}`)
  log({ event: 'result', ok: echo.text === 'echo: hello from one', connectMs, ackMs, roundTripMs, remote })
  await stop(0)
}
