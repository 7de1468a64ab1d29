import { EventEmitter } from 'node:events'
import { type FileHandle, open } from 'node:fs/promises'
import { chunkCount, chunkLength, type FilesMessage, Limits, Reason } from './codec.js'
import { FilesError, type FilesErrorCode } from './errors.js'
import { type HashedFile, leafHash, READ_NO_WAIT, readFully } from './hash-tree.js'
import { type Progress, ProgressMeter, type Wire } from './wire.js'

/** Requests one receiver may have queued with us per transfer (chunks and hash ranges). */
export const MAX_QUEUED_JOBS = 64

type Job = { kind: 'chunk'; index: number } | { kind: 'hashes'; start: number; count: number }

/** Where an outgoing transfer is: offered, accepted (sending), done (the receiver saved it), or failed. */
export type OutgoingStatus = 'offered' | 'accepted' | 'done' | 'failed'

/** Events of an {@link OutgoingTransfer}. */
export interface OutgoingTransferEvents {
  /** The receiver accepted (again, after a reconnection or its restart). */
  accepted: []
  progress: [progress: Progress]
  /** The receiver verified the whole file and saved it. */
  done: []
  failed: [error: FilesError]
}

export interface OutgoingInit {
  id: Uint8Array
  peerId: string
  path: string
  name: string
  file: HashedFile
  wire: Wire
  offerTimeout: number
  /** How long an accepted transfer waits for its receiver to come back. */
  resumeTimeout: number
  progressInterval: number
  /** Copies of the file (chunks and hash list) the receiver may fetch before we refuse. */
  maxServedCopies: number
  settled: (t: OutgoingTransfer) => void
}

const DECLINE_CODES: Record<number, FilesErrorCode> = {
  [Reason.DECLINED]: 'DECLINED',
  [Reason.EXPIRED]: 'EXPIRED',
  [Reason.BUSY]: 'BUSY',
  [Reason.NO_SPACE]: 'NO_SPACE',
}

/**
 * A file offered to one peer: answers its GET_HASHES and REQUESTs one job at a time, reading one chunk
 * at a time from disk (so memory is one chunk, whatever the file size) and sending it as 32 KiB pieces
 * while the channel is writable. How much is in flight is the receiver's window: it only asks for so
 * many chunks at once.
 */
export class OutgoingTransfer extends EventEmitter<OutgoingTransferEvents> {
  /** Transfer id, hex. */
  readonly id: string
  readonly peerId: string
  readonly path: string
  readonly name: string
  readonly size: number
  /** Root hash, hex: the content address the receiver checks everything against. */
  readonly root: string
  /** Resolves when the receiver has the file; rejects with a FilesError. */
  readonly finished: Promise<void>
  #status: OutgoingStatus = 'offered'
  readonly #init: OutgoingInit
  readonly #queue: Job[] = []
  /** Bumped when the link changes: a job in progress for the old link stops sending. */
  #generation = 0
  #pumping = false
  #fh: FileHandle | undefined
  #sent = 0
  /** Bytes read and sent for this receiver (chunks and hashes), whatever became of them. */
  #served = 0
  #timer: ReturnType<typeof setTimeout> | undefined
  readonly #meter: ProgressMeter
  #resolve!: () => void
  #reject!: (e: FilesError) => void

  /** @internal The file service creates transfers in `offer()`. */
  constructor(init: OutgoingInit) {
    super()
    this.#init = init
    this.id = Buffer.from(init.id).toString('hex')
    this.peerId = init.peerId
    this.path = init.path
    this.name = init.name
    this.size = init.file.size
    this.root = init.file.root.toString('hex')
    this.#meter = new ProgressMeter(this.size, init.progressInterval, 0)
    this.finished = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    // Callers that only listen to events must not see an unhandled rejection.
    this.finished.catch(() => {})
    this.#arm(init.offerTimeout, 'EXPIRED', 'nobody answered the offer in time', Reason.EXPIRED)
  }

  get status(): OutgoingStatus {
    return this.#status
  }

  get idBytes(): Uint8Array {
    return this.#init.id
  }

  get settled(): boolean {
    return this.#status === 'done' || this.#status === 'failed'
  }

  /** @internal The OFFER message for this transfer (sent again on every new session). */
  offerMessage(): FilesMessage {
    const f = this.#init.file
    return {
      type: 'OFFER',
      id: this.#init.id,
      root: f.root,
      size: f.size,
      chunkSize: f.chunkSize,
      name: this.name,
    }
  }

  /** (Re-)sends the offer: at first, and whenever a session with the receiver opens again. */
  sendOffer(): void {
    if (this.settled) return
    this.#init.wire.send(this.peerId, this.offerMessage())
    if (this.#status === 'accepted') this.#armIdle()
  }

  /** Stops whatever was being sent: the link changed, and the receiver asks again for what it lacks. */
  linkChanged(online: boolean): void {
    this.#generation++
    this.#queue.length = 0
    if (this.#status === 'accepted' && !online) {
      this.#arm(this.#init.resumeTimeout, 'CANCELLED', 'the receiver did not come back')
    }
  }

  /** Withdraws the offer or stops the transfer; the receiver is told. */
  cancel(): void {
    if (this.settled) return
    this.#init.wire.send(this.peerId, { type: 'CANCEL', id: this.#init.id, reason: Reason.CANCELLED })
    this.#fail(new FilesError('CANCELLED', `the transfer of ${this.name} was cancelled`))
  }

  /** The service is closing: fail without telling anyone (the peer is going away too). */
  abandon(): void {
    this.#fail(new FilesError('CANCELLED', 'the file service closed'))
  }

  /** @internal A message from the receiver about this transfer (ACCEPT, GET_HASHES, REQUEST, ...). */
  onMessage(msg: FilesMessage): void {
    if (this.settled) return
    switch (msg.type) {
      case 'ACCEPT':
        if (this.#status === 'offered') this.#status = 'accepted'
        this.#armIdle()
        this.emit('accepted')
        return
      case 'DECLINE': {
        const code = DECLINE_CODES[msg.reason] ?? 'DECLINED'
        this.#fail(new FilesError(code, `${this.name} was not accepted (${code.toLowerCase()})`))
        return
      }
      case 'CANCEL':
        this.#fail(new FilesError('CANCELLED', `the receiver cancelled ${this.name}`))
        return
      case 'DONE': {
        this.#status = 'done'
        this.#finish()
        const p = this.#meter.update(this.size, true)
        if (p) this.emit('progress', p)
        this.emit('done')
        this.#resolve()
        return
      }
      case 'GET_HASHES':
      case 'REQUEST': {
        if (this.#status !== 'accepted') return
        const jobs: Job[] =
          msg.type === 'GET_HASHES'
            ? [{ kind: 'hashes', start: msg.start, count: msg.count }]
            : msg.ranges.flatMap((r) =>
                Array.from({ length: r.count }, (_, i): Job => ({ kind: 'chunk', index: r.start + i })),
              )
        if (this.#queue.length + jobs.length > MAX_QUEUED_JOBS) {
          // A receiver past its own window is either broken or trying to make us buffer: a violation.
          throw new FilesError('MALFORMED', `more than ${MAX_QUEUED_JOBS} requests queued for one transfer`)
        }
        const n = chunkCount(this.size, this.#init.file.chunkSize)
        for (const job of jobs) {
          const end = job.kind === 'chunk' ? job.index + 1 : job.start + job.count
          if (end > n) throw new FilesError('MALFORMED', 'a request past the last chunk')
        }
        this.#queue.push(...jobs)
        this.#armIdle()
        void this.#pump()
        return
      }
      default:
        return
    }
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return
    this.#pumping = true
    const { wire, file } = this.#init
    try {
      while (this.#queue.length > 0 && !this.settled) {
        const generation = this.#generation
        if (!wire.writable(this.peerId)) {
          if (!wire.online(this.peerId)) return
          await wire.drained(this.peerId)
          continue
        }
        const job = this.#queue.shift()!
        this.#charge(
          job.kind === 'hashes' ? job.count * 32 : chunkLength(this.size, file.chunkSize, job.index),
        )
        if (job.kind === 'hashes') {
          const hashes = file.leaves.subarray(job.start * 32, (job.start + job.count) * 32)
          wire.send(this.peerId, { type: 'HASHES', id: this.#init.id, start: job.start, hashes })
          continue
        }
        const len = chunkLength(this.size, file.chunkSize, job.index)
        // A fresh buffer per chunk: the channel may keep a reference to what it is handed.
        const data = Buffer.allocUnsafe(len)
        this.#fh ??= await open(this.path, READ_NO_WAIT)
        await readFully(this.#fh, data, len, job.index * file.chunkSize)
        if (!leafHash(data).equals(file.leaves.subarray(job.index * 32, job.index * 32 + 32))) {
          throw new FilesError('FILE_CHANGED', `${this.path} changed since it was offered`)
        }
        for (let offset = 0; offset < len; offset += Limits.pieceBytes) {
          while (generation === this.#generation && !wire.writable(this.peerId) && wire.online(this.peerId)) {
            await wire.drained(this.peerId)
          }
          if (generation !== this.#generation || this.settled) break
          const piece = data.subarray(offset, Math.min(len, offset + Limits.pieceBytes))
          if (
            !wire.send(this.peerId, {
              type: 'CHUNK',
              id: this.#init.id,
              index: job.index,
              offset,
              data: piece,
            })
          ) {
            break
          }
          this.#sent += piece.byteLength
          // Serving a long chunk over a slow link is the receiver's request still being answered.
          this.#armIdle()
        }
        const p = this.#meter.update(Math.min(this.#sent, this.size))
        if (p) this.emit('progress', p)
      }
    } catch (err) {
      const error =
        err instanceof FilesError ? err : new FilesError('IO', `cannot read ${this.path}`, { cause: err })
      const reason = error.code === 'FILE_CHANGED' ? Reason.FILE_CHANGED : Reason.FAILED
      wire.send(this.peerId, { type: 'CANCEL', id: this.#init.id, reason })
      this.#fail(error)
    } finally {
      this.#pumping = false
    }
  }

  /**
   * Counts `bytes` against what this receiver may fetch: a few copies of the file cover reconnections
   * and refetched chunks, while a peer asking for it again and again would cost us disk reads and
   * bandwidth forever (one REQUEST asks for up to 64 chunks).
   * @throws FilesError SERVE_LIMIT past `maxServedCopies` copies
   */
  #charge(bytes: number): void {
    const { file, maxServedCopies } = this.#init
    this.#served += bytes
    const copy = this.size + chunkCount(this.size, file.chunkSize) * 32
    if (this.#served > maxServedCopies * copy) {
      throw new FilesError(
        'SERVE_LIMIT',
        `${this.peerId.slice(0, 8)} asked for ${this.name} more than ${maxServedCopies} times over; stopped`,
      )
    }
  }

  /**
   * An accepted transfer that neither gets a request nor sends a piece for `resumeTimeout` ends: a
   * receiver that accepts and then stays silent (or stops reading) would otherwise keep it, and its
   * open file, for good. An honest one asks for its next chunk as each arrives, or says DONE.
   */
  #armIdle(): void {
    this.#arm(this.#init.resumeTimeout, 'CANCELLED', 'the receiver asked for nothing', Reason.CANCELLED)
  }

  #arm(ms: number, code: FilesErrorCode, message: string, tell?: Reason): void {
    this.#disarm()
    this.#timer = setTimeout(() => {
      const id = this.#init.id
      if (tell !== undefined) this.#init.wire.send(this.peerId, { type: 'CANCEL', id, reason: tell })
      this.#fail(new FilesError(code, `${this.name}: ${message}`))
    }, ms)
    this.#timer.unref?.()
  }

  #disarm(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #fail(error: FilesError): void {
    if (this.settled) return
    this.#status = 'failed'
    this.#finish()
    this.emit('failed', error)
    this.#reject(error)
  }

  #finish(): void {
    this.#disarm()
    this.#queue.length = 0
    this.#generation++
    const fh = this.#fh
    this.#fh = undefined
    void fh?.close().catch(() => {})
    this.#init.settled(this)
  }
}
