// The lab's "internet": a 4-node HyperDHT testnet (fewer make connects fail) on this namespace's address.
import createTestnet from '@hyperswarm/testnet'

const host = process.argv[2] ?? '127.0.0.1'
const testnet = await createTestnet(4, { host })
console.log(`ready ${JSON.stringify(testnet.bootstrap)}`)
const stop = async () => {
  await testnet.destroy()
  process.exit(0)
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
