import { memoryNetwork, memoryTransport } from '@parley/core'
import { describeTransport } from '../src/transport-compliance.js'

describeTransport('memory', () => ({
  transport: memoryTransport(memoryNetwork()),
  listenAddress: 'mem:0',
  unusedAddress: 'nobody:1',
}))

// Every chunk split into single bytes: nothing may depend on chunk boundaries.
describeTransport('memory, byte at a time', () => {
  const network = memoryNetwork()
  network.setChunking(1)
  return { transport: memoryTransport(network), listenAddress: 'mem:0', unusedAddress: 'nobody:1' }
})
