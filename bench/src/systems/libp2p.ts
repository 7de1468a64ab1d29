// First: the polyfill must be installed before js-libp2p's modules run.
import './promise-with-resolvers.js'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { FramedChannel } from './framed-channel.js'
import type { System, SystemFactory } from './types.js'

const PROTOCOL = '/parley-bench/1.0.0'

/**
 * js-libp2p: TCP + Noise + Yamux, one protocol stream per connection, the bench's length-prefix
 * framing on it. Limits that would refuse or prune the bench's connections are lifted, and the
 * connection monitor does not abort a connection whose ping is stuck behind a saturated stream.
 */
export const createLibp2pSystem: SystemFactory = async () => {
  const system: System = {
    // Concurrent dials from one node to one address join a single pending dial inside js-libp2p,
    // even with `force`, so each concurrent dial gets a client node of its own (see dialer()).
    dialConcurrency: 8,
    payload: (bytes) => Buffer.alloc(bytes, 'x'),
    async listen(onChannel) {
      const node = await newNode(true)
      await node.handle(PROTOCOL, (stream) => onChannel(streamChannel(stream)), {
        maxInboundStreams: 4,
      })
      const address = node.getMultiaddrs()[0]
      if (address === undefined) throw new Error('the js-libp2p server has no address')
      const port = Number(address.getComponents().find((c) => c.name === 'tcp')?.value)
      return { port, close: async () => node.stop() }
    },
    async dialer() {
      // Nodes not dialing right now; a dial takes one (or starts a new one) and gives it back.
      const idle: Libp2p[] = []
      const all: Libp2p[] = []
      return {
        prepare: async () => {},
        async dial(port) {
          let node = idle.pop()
          if (!node) {
            node = await newNode(false)
            all.push(node)
          }
          try {
            // force: a new connection every time, as the setup and memory scenarios need.
            const connection = await node.dial(multiaddr(`/ip4/127.0.0.1/tcp/${port}`), { force: true })
            const stream = await connection.newStream(PROTOCOL)
            return streamChannel(stream, () => connection.close())
          } finally {
            idle.push(node)
          }
        },
        close: async () => {
          await Promise.all(all.map((node) => node.stop()))
        },
      }
    },
  }
  return system
}

async function newNode(listen: boolean): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: listen ? ['/ip4/127.0.0.1/tcp/0'] : [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      maxConnections: 100_000,
      maxIncomingPendingConnections: 1_000,
      inboundConnectionThreshold: 1_000_000,
      maxParallelDials: 1_000,
    },
    connectionMonitor: { abortConnectionOnPingFailure: false },
  })
}

function streamChannel(stream: Stream, close: () => Promise<void> = () => stream.close()): FramedChannel {
  // One length-prefixed frame per stream.send(), as a js-libp2p application sends messages: no
  // bench-side coalescing (that is the raw and TLS rows' framer, not part of js-libp2p).
  const channel = new FramedChannel(
    {
      write: (chunk) => stream.send(chunk),
      settled: async () => {
        if (stream.writableNeedsDrain) await stream.onDrain()
      },
      close,
    },
    { coalesce: false },
  )
  stream.addEventListener('message', (event) => {
    const data = event.data
    channel.data(data instanceof Uint8Array ? data : data.subarray())
  })
  stream.addEventListener('drain', () => channel.drain())
  stream.addEventListener('close', (event) =>
    channel.fail(event.error ?? new Error('the js-libp2p stream closed')),
  )
  return channel
}
