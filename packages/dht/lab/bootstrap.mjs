// The lab's "internet" host: a 4-node HyperDHT testnet (fewer make connects fail) on this namespace's
// address, and a blind relay (a DHT server running blind-relay) for peers whose NATs defeat punching.
import createTestnet from '@hyperswarm/testnet'
import { Server as RelayServer } from 'blind-relay'
import DHT from 'hyperdht'

const host = process.argv[2] ?? '127.0.0.1'
const testnet = await createTestnet(4, { host })
const node = new DHT({ bootstrap: testnet.bootstrap })
await node.ready()
const relay = new RelayServer({ createStream: (opts) => node.createRawStream({ ...opts, framed: true }) })
const server = node.createServer((socket) => {
  socket.on('error', () => {})
  relay.accept(socket, { id: socket.remotePublicKey }).on('error', () => {})
})
const keyPair = DHT.keyPair()
await server.listen(keyPair)
console.log(`ready ${JSON.stringify(testnet.bootstrap)} relay ${keyPair.publicKey.toString('hex')}`)
const stop = async () => {
  await node.destroy({ force: true })
  await testnet.destroy()
  process.exit(0)
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
