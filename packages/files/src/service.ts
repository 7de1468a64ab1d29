import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { basename, resolve } from 'node:path'
import type { Channel, ServiceHandler } from '@parley/core'
import { encode, type FilesMessage, Reason } from './codec.js'
import type { Download, DownloadTuning } from './download.js'
import { FilesError } from './errors.js'
import { FilesHandler } from './handler.js'
import { HashCache } from './hash-cache.js'
import { DEFAULT_CHUNK_SIZE } from './hash-tree.js'
import { Inbox } from './inbox.js'
import type { IncomingOffer } from './offer.js'
import { OutgoingTransfer } from './outgoing.js'
import {
  DEFAULTS,
  FILES_PROTOCOL,
  type FileService,
  type FileServiceEvents,
  type FileServiceInit,
  type OfferOptions,
} from './service-types.js'
import { type PeerRef, transferKey, type Wire } from './wire.js'

export type { FileService, FileServiceEvents, FileServiceInit, OfferOptions } from './service-types.js'
export { FILES_PROTOCOL } from './service-types.js'

/** Creates the file service. See docs/FILES.md. */
export function createFileService(init: FileServiceInit = {}): FileService {
  return new ParleyFileService(init)
}

class ParleyFileService extends EventEmitter<FileServiceEvents> implements FileService {
  readonly protocol = FILES_PROTOCOL
  readonly #init: FileServiceInit
  readonly #tuning: DownloadTuning
  readonly #handlers = new Map<string, FilesHandler>()
  /** Our transfers, by `<receiver id>:<transfer id>`. */
  readonly #outgoing = new Map<string, OutgoingTransfer>()
  readonly #inbox: Inbox
  readonly #hashes = new HashCache()
  #closed = false

  readonly #wire: Wire = {
    send: (peerId, msg) => {
      const h = this.#handlers.get(peerId)
      if (!h?.channel.online) return false
      try {
        h.channel.sendBytes(encode(msg))
        return true
      } catch {
        return false
      }
    },
    online: (peerId) => this.#handlers.get(peerId)?.channel.online === true,
    writable: (peerId) => this.#handlers.get(peerId)?.channel.writable === true,
    drained: (peerId) => this.#handlers.get(peerId)?.drained() ?? Promise.resolve(),
  }

  constructor(init: FileServiceInit) {
    super()
    this.#init = init
    this.#tuning = {
      window: init.window ?? DEFAULTS.window,
      maxBuffered: init.maxBuffered ?? DEFAULTS.maxBuffered,
      requestTimeout: init.requestTimeout ?? DEFAULTS.requestTimeout,
      minRate: init.minRate ?? DEFAULTS.minRate,
      resumeTimeout: init.resumeTimeout ?? DEFAULTS.resumeTimeout,
      maxStrikes: init.maxStrikes ?? DEFAULTS.maxStrikes,
      progressInterval: init.progressInterval ?? DEFAULTS.progressInterval,
      saveInterval: init.saveInterval ?? DEFAULTS.saveInterval,
    }
    this.#inbox = new Inbox({
      options: init,
      tuning: this.#tuning,
      wire: this.#wire,
      emit: (event, ...args) => this.emit(event, ...(args as never)),
      closed: () => this.#closed,
    })
  }

  // ---- Service --------------------------------------------------------------------------------

  open(channel: Channel): ServiceHandler {
    const handler = new FilesHandler(this, channel)
    this.#handlers.set(channel.peer.id, handler)
    // A session with a receiver came (back): offer again what it has not finished.
    queueMicrotask(() => {
      for (const t of this.#outgoing.values()) if (t.peerId === channel.peer.id) t.sendOffer()
    })
    return handler
  }

  resumed(handler: FilesHandler): void {
    const id = handler.channel.peer.id
    for (const t of this.#outgoing.values()) {
      if (t.peerId !== id) continue
      t.linkChanged(true)
      // The receiver may be a new process under the same key (it crashed and came back before our
      // session noticed): offer again, or it would never ask. A receiver that knows the offer ignores it.
      t.sendOffer()
    }
    this.#inbox.sourceResumed(id)
  }

  closed(handler: FilesHandler): void {
    const id = handler.channel.peer.id
    if (this.#handlers.get(id) !== handler) return
    this.#handlers.delete(id)
    for (const t of this.#outgoing.values()) if (t.peerId === id) t.linkChanged(false)
    this.#inbox.sourceOffline(id)
  }

  onMessage(handler: FilesHandler, msg: FilesMessage): void {
    if (this.#closed) return
    const peer = handler.channel.peer
    const key = transferKey(peer.id, msg.id)
    // Every message but the data we asked for costs its sender a token of its rate budget.
    if (msg.type !== 'CHUNK' && msg.type !== 'HASHES') handler.channel.spend()
    switch (msg.type) {
      case 'OFFER':
        void this.#inbox.onOffer(peer, key, msg)
        return
      case 'GET_HASHES':
      case 'REQUEST':
      case 'ACCEPT':
      case 'DECLINE':
      case 'DONE': {
        const t = this.#outgoing.get(key)
        if (t) t.onMessage(msg)
        else if (msg.type === 'GET_HASHES' || msg.type === 'REQUEST' || msg.type === 'ACCEPT') {
          // We forgot it (restarted, or it finished): the receiver should stop asking us.
          if (handler.channel.writable)
            this.#wire.send(peer.id, { type: 'CANCEL', id: msg.id, reason: Reason.UNKNOWN_TRANSFER })
        }
        return
      }
      // Data nobody asked for (an unknown transfer, a late or repeated piece) pays like any message.
      case 'HASHES':
        if (!this.#inbox.onHashes(peer.id, key, msg)) handler.channel.spend()
        return
      case 'CHUNK':
        if (!this.#inbox.onChunk(peer.id, key, msg.index, msg.offset, msg.data)) handler.channel.spend()
        return
      case 'CANCEL':
        this.#outgoing.get(key)?.onMessage(msg)
        this.#inbox.onCancel(peer.id, key, msg.reason)
        return
    }
  }

  // ---- sending --------------------------------------------------------------------------------

  async offer(peerId: string, path: string, options: OfferOptions = {}): Promise<OutgoingTransfer> {
    if (this.#closed) throw new FilesError('CANCELLED', 'the file service is closed')
    const ready = () => {
      if (!this.#wire.online(peerId)) {
        throw new FilesError(
          'NOT_CONNECTED',
          `${peerId.slice(0, 8)} is not connected or does not run file transfer`,
        )
      }
    }
    ready()
    const chunkSize = this.#init.chunkSize ?? DEFAULT_CHUNK_SIZE
    const file = await this.#hashes.get(resolve(path), chunkSize, options.signal)
    ready()
    // The wire allows 255 bytes of name: drop characters from the front, keeping the extension.
    const chars = [...(options.name ?? basename(path))]
    while (Buffer.byteLength(chars.join('')) > 255) chars.shift()
    const name = chars.join('')
    const t = new OutgoingTransfer({
      id: randomBytes(16),
      peerId,
      path: resolve(path),
      name: name || 'file',
      file,
      wire: this.#wire,
      offerTimeout: this.#init.offerTimeout ?? DEFAULTS.offerTimeout,
      resumeTimeout: this.#init.resumeTimeout ?? DEFAULTS.resumeTimeout,
      progressInterval: this.#tuning.progressInterval,
      maxServedCopies: this.#init.maxServedCopies ?? DEFAULTS.maxServedCopies,
      settled: (done) => this.#outgoing.delete(`${done.peerId}:${done.id}`),
    })
    this.#outgoing.set(`${peerId}:${t.id}`, t)
    const { signal } = options
    if (signal) {
      const onAbort = () => t.cancel()
      signal.addEventListener('abort', onAbort, { once: true })
      t.finished.then(
        () => signal.removeEventListener('abort', onAbort),
        () => signal.removeEventListener('abort', onAbort),
      )
    }
    t.sendOffer()
    this.emit('transfer', t)
    return t
  }

  // ---- queries and lifecycle ------------------------------------------------------------------

  offers(): IncomingOffer[] {
    return this.#inbox.offers()
  }

  downloads(): Download[] {
    return this.#inbox.downloads()
  }

  transfers(): OutgoingTransfer[] {
    return [...this.#outgoing.values()]
  }

  peers(): PeerRef[] {
    return [...this.#handlers.values()].filter((h) => h.channel.online).map((h) => h.channel.peer)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const t of [...this.#outgoing.values()]) t.abandon()
    await this.#inbox.close()
  }
}
