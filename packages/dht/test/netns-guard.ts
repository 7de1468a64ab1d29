import { networkInterfaces } from 'node:os'

// HyperDHT also sends to this machine's own interface addresses: DHT tests run only where loopback is
// the only interface (test/run-in-netns.sh makes such a namespace). Anywhere else they fail here.
const interfaces = Object.keys(networkInterfaces())
if (interfaces.some((name) => name !== 'lo')) {
  throw new Error(
    `DHT tests must run in a network namespace with only loopback (found ${interfaces.join(', ')}): run them with \`pnpm test\` in packages/dht`,
  )
}
