import { connect, createServer } from 'node:net'
import { socketChannel } from './framed-channel.js'
import { closeServer, connected, portOf } from './net-util.js'
import type { System, SystemFactory } from './types.js'

/** raw: node:net with the bench's coalescing 4-byte length-prefix framer. The practical ceiling. */
export const createRawSystem: SystemFactory = async () => {
  const system: System = {
    dialConcurrency: 16,
    payload: (bytes) => Buffer.alloc(bytes, 'x'),
    async listen(onChannel) {
      const server = createServer({ noDelay: true }, (socket) => onChannel(socketChannel(socket)))
      const port = await portOf(server)
      return { port, close: () => closeServer(server) }
    },
    async dialer() {
      return {
        prepare: async () => {},
        async dial(port) {
          const socket = connect({ host: '127.0.0.1', port, noDelay: true })
          await connected(socket, 'connect')
          return socketChannel(socket)
        },
        close: async () => {},
      }
    },
  }
  return system
}
