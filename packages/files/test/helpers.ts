import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createReadStream } from 'node:fs'
import { mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type Channel,
  createPeer,
  generateIdentity,
  type Identity,
  type MemoryNetwork,
  memoryNetwork,
  memoryTransport,
  type Peer,
  type PeerInit,
  type Service,
} from '@parley/core'
import { onTestFinished, vi } from 'vitest'
import {
  createFileService,
  decode,
  encode,
  FILES_PROTOCOL,
  type FileService,
  type FileServiceInit,
  type FilesMessage,
  type IncomingOffer,
  MessageType,
} from '../src/index.js'

export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'parley-files-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Writes `size` random bytes, 1 MiB at a time. */
export async function randomFile(path: string, size: number): Promise<string> {
  const fh = await open(path, 'w')
  try {
    for (let done = 0; done < size; ) {
      const n = Math.min(1024 * 1024, size - done)
      await fh.write(randomBytes(n), 0, n, done)
      done += n
    }
  } finally {
    await fh.close()
  }
  return path
}

/** SHA-256 of a file, computed here (not by the code under test). */
export async function sha256(path: string): Promise<string> {
  const h = createHash('sha256')
  const stream = createReadStream(path)
  stream.on('data', (d) => h.update(d))
  await once(stream, 'end')
  return h.digest('hex')
}

/** The next `offer` event of a file service. */
export function nextOffer(files: FileService): Promise<IncomingOffer> {
  return new Promise((resolve) => files.once('offer', resolve))
}

export interface Node {
  peer: Peer
  files: FileService
  identity: Identity
  host: string
}

export interface Net {
  network: MemoryNetwork
  node(
    host: string,
    files?: FileServiceInit,
    peer?: Partial<PeerInit>,
    service?: (s: FileService) => Service,
  ): Promise<Node>
}

/** Peers on one in-memory network, each running a file service; all stopped when the test ends. */
export function memoryNet(): Net {
  const network = memoryNetwork()
  return {
    network,
    async node(host, filesInit = {}, peerInit = {}, wrap) {
      const files = createFileService(filesInit)
      const identity = peerInit.identity ?? generateIdentity()
      const peer = createPeer({
        transport: memoryTransport(network, { host }),
        name: host,
        listen: `${host}:0`,
        identity,
        services: [wrap ? wrap(files) : files],
        ...peerInit,
      })
      onTestFinished(async () => {
        await files.close()
        await peer.stop()
      })
      await peer.start()
      return { peer, files, identity, host }
    },
  }
}

/** Connects `a` to `b` and waits until both file services see each other. */
export async function link(a: Node, b: Node): Promise<void> {
  await a.peer.connect(b.peer.addresses[0]!)
  await waitUntil(
    () => a.files.peers().some((p) => p.id === b.peer.id) && b.files.peers().some((p) => p.id === a.peer.id),
  )
}

/** Connects a raw peer (`rawFiles`) to `b` and waits until `b`'s file service sees it. */
export async function linkRaw(raw: Node, b: Node): Promise<void> {
  await raw.peer.connect(b.peer.addresses[0]!)
  await waitUntil(() => b.files.peers().some((p) => p.id === raw.peer.id))
}

/** Polls a condition on each event-loop turn (bounded by a deadline), for state without an event. */
/** One turn of the event loop: I/O and the memory network (setImmediate, never faked here) run. */
export function ioTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

export async function waitUntil(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    // On a fake clock, move it (I/O and the memory network still run on setImmediate).
    if (vi.isFakeTimers()) {
      await ioTurn()
      await vi.advanceTimersByTimeAsync(5)
    } else await new Promise((r) => setTimeout(r, 5))
  }
}

/**
 * Wraps a file service so that every CHUNK it sends whose chunk index passes `corrupt` has one byte
 * flipped: a lying (or broken) sender.
 */
export function lying(corrupt: (index: number, offset: number) => boolean): (s: FileService) => Service {
  return (inner) => ({
    protocol: inner.protocol,
    open(channel: Channel) {
      const liar: Channel = Object.create(channel, {
        sendBytes: {
          value(body: Uint8Array) {
            if (body[0] === MessageType.CHUNK) {
              const view = new DataView(body.buffer, body.byteOffset, body.byteLength)
              if (corrupt(view.getUint32(17), view.getUint32(21))) {
                const copy = Buffer.from(body)
                copy[copy.length - 1]! ^= 0xff
                return channel.sendBytes(copy)
              }
            }
            return channel.sendBytes(body)
          },
        },
      })
      return inner.open(liar)
    },
  })
}

/** Wraps a file service so that it never sends a CHUNK: a source that stalls. */
export function stalling(): (s: FileService) => Service {
  return (inner) => ({
    protocol: inner.protocol,
    open(channel: Channel) {
      const staller: Channel = Object.create(channel, {
        sendBytes: {
          value: (body: Uint8Array) =>
            body[0] === MessageType.CHUNK ? channel.writable : channel.sendBytes(body),
        },
      })
      return inner.open(staller)
    },
  })
}

/** Wraps a file service so that it sends no CHUNK while `hold` is set: a sender paused at will. */
export function holding(): { wrap: (s: FileService) => Service; hold: boolean } {
  const state = {
    hold: false,
    wrap: (inner: FileService): Service => ({
      protocol: inner.protocol,
      open(channel: Channel) {
        const holder: Channel = Object.create(channel, {
          sendBytes: {
            value: (body: Uint8Array) =>
              body[0] === MessageType.CHUNK && state.hold ? channel.writable : channel.sendBytes(body),
          },
        })
        return inner.open(holder)
      },
    }),
  }
  return state
}

/** Wraps a file service so that every REQUEST it sends goes out `times` times: a receiver past its window. */
export function flooding(times: number): (s: FileService) => Service {
  return (inner) => ({
    protocol: inner.protocol,
    open(channel: Channel) {
      const flooder: Channel = Object.create(channel, {
        sendBytes: {
          value: (body: Uint8Array) => {
            if (body[0] !== MessageType.REQUEST) return channel.sendBytes(body)
            for (let i = 1; i < times; i++) channel.sendBytes(body)
            return channel.sendBytes(body)
          },
        },
      })
      return inner.open(flooder)
    },
  })
}

/** Wraps a file service so that the leaf hashes it sends are wrong (one byte flipped). */
export function lyingHashes(): (s: FileService) => Service {
  return (inner) => ({
    protocol: inner.protocol,
    open(channel: Channel) {
      const liar: Channel = Object.create(channel, {
        sendBytes: {
          value(body: Uint8Array) {
            if (body[0] !== MessageType.HASHES) return channel.sendBytes(body)
            const copy = Buffer.from(body)
            copy[copy.length - 1]! ^= 0x01
            return channel.sendBytes(copy)
          },
        },
      })
      return inner.open(liar)
    },
  })
}

/**
 * A hand-driven `parley/files/1` peer (in place of the file service): sends crafted messages and
 * records what it receives, to play a hostile or minimal peer.
 */
export interface RawFiles {
  wrap: (s: FileService) => Service
  send(peerId: string, msg: FilesMessage): boolean
  received: FilesMessage[]
}

/** `react` sees each message as it arrives, with the peer it came from. */
export function rawFiles(react?: (from: string, msg: FilesMessage) => void): RawFiles {
  const channels = new Map<string, Channel>()
  const received: FilesMessage[] = []
  return {
    received,
    send: (peerId, msg) => channels.get(peerId)!.sendBytes(encode(msg)),
    wrap: () => ({
      protocol: FILES_PROTOCOL,
      open(channel: Channel) {
        channels.set(channel.peer.id, channel)
        return {
          onFrame: (body: Uint8Array) => {
            // Copied: CHUNK and HASHES hold views of the frame.
            const msg = decode(Buffer.from(body))
            received.push(msg)
            react?.(channel.peer.id, msg)
          },
          onClose: () => channels.delete(channel.peer.id),
        }
      },
    }),
  }
}
