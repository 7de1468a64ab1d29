import { connect, createServer } from 'node:tls'
import type { FrameSinkInit } from '../framing.js'
import { socketChannel } from './framed-channel.js'
import { closeServer, connected, portOf } from './net-util.js'
import type { System, SystemFactory, SystemOptions } from './types.js'

/** TLS 1.3 (node:tls) with the self-signed certificate made at bench start, and the raw framer. */
export const createTlsSystem: SystemFactory = async (options) => tlsSystem(options, {})

/** TLS 1.3, one `socket.write()` (so one TLS record) per message: an application that does not batch. */
export const createTlsNaiveSystem: SystemFactory = async (options) => tlsSystem(options, { coalesce: false })

function tlsSystem(options: SystemOptions, sink: FrameSinkInit): System {
  const creds = options.tls
  if (!creds) throw new Error('the TLS system needs a key and certificate')
  return {
    dialConcurrency: 16,
    payload: (bytes) => Buffer.alloc(bytes, 'x'),
    async listen(onChannel) {
      const server = createServer(
        { key: creds.key, cert: creds.cert, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' },
        (socket) => onChannel(socketChannel(socket, sink)),
      )
      // A client that gives up mid-handshake must not crash the worker.
      server.on('tlsClientError', () => {})
      const port = await portOf(server)
      return { port, close: () => closeServer(server) }
    },
    async dialer() {
      return {
        prepare: async () => {},
        async dial(port) {
          // The certificate is the trust anchor: a full verification of the chain and of the name.
          const socket = connect({
            host: '127.0.0.1',
            port,
            servername: 'localhost',
            ca: creds.cert,
            minVersion: 'TLSv1.3',
            maxVersion: 'TLSv1.3',
          })
          await connected(socket, 'secureConnect')
          return socketChannel(socket, sink)
        },
        close: async () => {},
      }
    },
  }
}
