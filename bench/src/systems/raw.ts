import { connect, createServer } from 'node:net'
import type { FrameSinkInit } from '../framing.js'
import { socketChannel } from './framed-channel.js'
import { closeServer, connected, portOf } from './net-util.js'
import type { System, SystemFactory } from './types.js'

/**
 * raw: node:net with the bench's coalescing 4-byte length-prefix framer, as Node's documentation
 * recommends for many small writes (`writable.cork()`: one write for a tick's frames). The practical
 * ceiling.
 */
export const createRawSystem: SystemFactory = async () => rawSystem({})

/** raw, one `socket.write()` per message: how an application that does not batch uses node:net. */
export const createRawNaiveSystem: SystemFactory = async () => rawSystem({ coalesce: false })

function rawSystem(sink: FrameSinkInit): System {
  return {
    dialConcurrency: 16,
    payload: (bytes) => Buffer.alloc(bytes, 'x'),
    async listen(onChannel) {
      const server = createServer({ noDelay: true }, (socket) => onChannel(socketChannel(socket, sink)))
      const port = await portOf(server)
      return { port, close: () => closeServer(server) }
    },
    async dialer() {
      return {
        prepare: async () => {},
        async dial(port) {
          const socket = connect({ host: '127.0.0.1', port, noDelay: true })
          await connected(socket, 'connect')
          return socketChannel(socket, sink)
        },
        close: async () => {},
      }
    },
  }
}
