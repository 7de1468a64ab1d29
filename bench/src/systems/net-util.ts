import type { AddressInfo, Server, Socket } from 'node:net'

/** Listens on 127.0.0.1, port 0, and resolves with the bound port. */
export function portOf(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      server.off('error', reject)
      resolve((server.address() as AddressInfo).port)
    })
  })
}

/**
 * Stops listening. Accepted connections are left to their channels (and to the worker's exit):
 * `server.close()`'s callback would wait for every one of them.
 */
export function closeServer(server: Server): Promise<void> {
  server.close()
  return Promise.resolve()
}

/** Resolves on `event` (connect, secureConnect), rejects on error or close first. */
export function connected(socket: Socket, event: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      socket.off(event, onReady)
      socket.off('close', onClose)
      socket.destroy()
      reject(err)
    }
    const onClose = () => onError(new Error(`the connection closed before ${event}`))
    const onReady = () => {
      socket.off('error', onError)
      socket.off('close', onClose)
      resolve()
    }
    socket.once(event, onReady)
    socket.once('error', onError)
    socket.once('close', onClose)
  })
}
