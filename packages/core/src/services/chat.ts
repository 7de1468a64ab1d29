import { randomBytes } from 'node:crypto'
import {
  AckStatus,
  type AckUpToMessage,
  decodeMessage,
  Limits,
  ProtocolError,
  StreamIds,
} from '@parley/protocol'
import { PeerError } from '../peer-errors.js'
import type { ReceivedMessage, SendManyResult, SendOptions, SendResult } from '../peer-types.js'
import { PendingQueue } from '../pending-queue.js'
import { coarseNow, TokenBucket } from '../util.js'
import { WaitQueue } from '../wait-queue.js'
import { DeliveredFrom, type Seen } from './delivered-from.js'
import type { Channel, Service, ServiceHandler } from './service.js'

/** Protocol name of acknowledged text delivery. */
export const CHAT_PROTOCOL = 'parley/chat/1'

export interface ChatInit {
  ackTimeout: number
  inFlightMessages: number
  inFlightBytes: number
  waiting: number
  /**
   * The pace this peer keeps its TEXTs to each remote within, or false: at most `burst` at once and
   * unacknowledged, `perSecond` over time. A remote ends the session of a peer that sends past its rate
   * budget (`rateLimit`), so an honest sender paces itself below it; a send past the pace waits for room
   * like one past the window. Unacknowledged counts too: a remote that stalls, then reads its backlog at
   * once, sees at most that backlog plus one burst in a moment.
   */
  pace: { perSecond: number; burst: number } | false
  onMessage: (message: ReceivedMessage) => void
  /** Whether a sender has a session now (its dedup state is then never forgotten). */
  isConnected: (peerId: string) => boolean
}

/**
 * A send: waiting for room in the window (seq 0), then awaiting its acknowledgement. It is also the
 * TEXT frame that is written (and re-sent), so a send costs its promise and this one object (which a
 * plain send waiting for room does not have yet: see WaitQueue).
 */
interface Pending {
  readonly type: 'TEXT'
  stream: string
  seq: number
  sentAt: number
  readonly text: string
  /** Text bytes, counted against the per-peer in-flight budget. */
  readonly bytes: number
  deadline: number
  readonly timeout: number
  resolve: (r: SendResult) => void
  reject: (e: PeerError) => void
  /** A batch's text: called with the acknowledgement's time instead of `resolve` (no result object). */
  readonly acked: ((ackedAt: number) => void) | undefined
  /** Aborted while it waited for room: skipped when its turn comes. */
  gone: boolean
}

/** A `sendMany()` batch waiting for room: its texts become entries only as they are written. */
interface WaitingBatch {
  readonly type: 'BATCH'
  /** Writes texts while there is room; true once none is left to write (all written, or it failed). */
  writeSome(): boolean
  fail(error: PeerError): void
}

// `new Promise(captureResolvers)` hands out a promise's resolvers without a closure per call
// (Promise.withResolvers needs Node 22). The executor runs synchronously, so they are read right after.
let capturedResolve: (r: SendResult) => void = () => {}
let capturedReject: (e: PeerError) => void = () => {}
function captureResolvers(resolve: (r: SendResult) => void, reject: (e: PeerError) => void): void {
  capturedResolve = resolve
  capturedReject = reject
}

/** The `resolve` of a batch's texts, which are acknowledged through `acked`. */
const IGNORED = () => {}

/** An ACK_UPTO frame: length prefix, channel byte, type byte, stream and seq. */
const ACK_UPTO_FRAME_BYTES = 4 + 1 + 1 + Limits.messageIdBytes

/**
 * Chat: acknowledged text delivery with dedup (PROTOCOL.md, "Acknowledgements"). Each remote peer
 * has a send window (messages and bytes in flight); senders beyond it wait in order.
 */
export class ChatService implements Service {
  readonly protocol = CHAT_PROTOCOL
  readonly #init: ChatInit
  readonly #handlers = new Set<ChatHandler>()
  /** Per sender (bounded): what was delivered from it. */
  readonly #seen: DeliveredFrom
  /** Set by the peer's stop() while it waits for every pending send to be acknowledged. */
  onAllAcked: (() => void) | undefined

  constructor(init: ChatInit) {
    this.#init = init
    this.#seen = new DeliveredFrom(init.isConnected)
  }

  open(channel: Channel): ChatHandler {
    const handler = new ChatHandler(this, channel, this.#init)
    this.#handlers.add(handler)
    return handler
  }

  closed(handler: ChatHandler): void {
    this.#handlers.delete(handler)
    this.settledOne()
  }

  allAcked(): boolean {
    for (const h of this.#handlers) if (h.pendingCount > 0) return false
    return true
  }

  settledOne(): void {
    if (this.onAllAcked && this.allAcked()) this.onAllAcked()
  }

  /** Fails every send whose acknowledgement is overdue. */
  tick(now: number): void {
    for (const h of this.#handlers) h.expire(now)
  }

  /** What was delivered from `sender` on `stream` (see DeliveredFrom). */
  seenFrom(sender: string, stream: string, now: number): Seen {
    return this.#seen.on(sender, stream, now)
  }
}

/** Chat with one remote peer: our stream of TEXTs to it and the acknowledgements we owe it. */
export class ChatHandler implements ServiceHandler {
  /** Our stream of TEXTs to the remote: ids are `stream` + seq. */
  readonly stream = randomBytes(Limits.streamBytes).toString('hex')
  readonly #ids = new StreamIds(this.stream)
  /** The ids of the remote's stream (a new one each session of the remote's). */
  #remoteIds = new StreamIds('')
  nextSeq = 1
  readonly #pending = new PendingQueue<Pending>()
  #inFlightBytes = 0
  /** The highest seq an ACK_UPTO has acknowledged. */
  #ackedUpTo = 0
  /** Sends waiting for room, oldest first. */
  readonly #waiting = new WaitQueue<Pending | WaitingBatch, SendResult, PeerError>()
  /** How many of the waiting items are batches. */
  #batchedWaiting = 0
  /** Our pace towards the remote's rate budget (see ChatInit.pace), and the timer that admits more. */
  readonly #pace: TokenBucket | undefined
  #paceTimer: ReturnType<typeof setTimeout> | undefined
  /** TEXTs unacknowledged at most: the window, or the pace's burst when that is smaller. */
  readonly #maxInFlight: number
  /** The ACK_UPTO owed for TEXTs read and not yet answered (seq 0: none). */
  #ackStream = ''
  #ackSeq = 0
  /**
   * The ACK_UPTO written last while it still waits unsent in the channel's queue (a remote that does not
   * read), and the bytes of chat frames queued behind it. ACK_UPTO is cumulative, so a newer one replaces
   * its value rather than queue another: one per read would grow without bound for a peer that sends
   * and never reads. The queue is first in, first out, so the ACK_UPTO is still there exactly while the
   * channel holds more than what was queued after it.
   */
  #queuedAck: AckUpToMessage | undefined
  #queuedAfterAck = 0
  /**
   * Duplicate TEXTs this link may send before each costs the rate budget: one window, what an honest
   * sender re-sends after a reconnect. Past it, duplicates are work for nothing (decoding, dedup).
   */
  #freeDuplicates: number
  #closed: PeerError | undefined
  /**
   * `channel.peer`, read once per link rather than per TEXT (the session compares the announced name
   * on every read): the name can only change with the link, and a new link resumes the handler.
   */
  #from: { readonly id: string; readonly name: string } | undefined
  /**
   * The sender's dedup state, looked up once per read rather than per TEXT. Nothing else touches the
   * sender's entry while one of its reads is handled, so it cannot be forgotten meanwhile.
   */
  #seen: Seen | undefined

  constructor(
    readonly service: ChatService,
    readonly channel: Channel,
    readonly init: ChatInit,
  ) {
    this.#freeDuplicates = init.inFlightMessages
    const pace = init.pace
    const burst = pace === false ? 0 : Math.max(1, Math.floor(pace.burst))
    this.#pace = pace === false ? undefined : new TokenBucket(pace.perSecond, burst)
    this.#maxInFlight = pace === false ? init.inFlightMessages : Math.min(init.inFlightMessages, burst)
  }

  get pendingCount(): number {
    return this.#pending.size
  }

  get #peer(): { readonly id: string; readonly name: string } {
    if (this.#from === undefined) this.#from = this.channel.peer
    return this.#from
  }

  // ---- receiving ------------------------------------------------------------------------------

  onFrame(body: Uint8Array): void {
    const msg = decodeMessage(body)
    switch (msg.type) {
      case 'TEXT': {
        if (this.#ackStream !== msg.stream) {
          const switched = this.#ackStream !== ''
          this.onReadEnd()
          // A sender has one stream per session; each switch back and forth costs us an ACK_UPTO even
          // for duplicates, so it costs the budget (an honest peer switches once, after a restart).
          if (switched) this.channel.spend()
        }
        const from = this.#peer
        // A new stream ended the read's state above, so a cached dedup state is this stream's.
        this.#seen ??= this.service.seenFrom(from.id, msg.stream, this.channel.receivedAt)
        const seen = this.#seen
        this.#ackStream = msg.stream
        // At or below the highest seq delivered: a re-send of a delivered TEXT; acknowledge it again.
        if (msg.seq <= seen.highest) {
          this.#ackSeq = seen.highest
          if (this.#freeDuplicates > 0) this.#freeDuplicates--
          else this.#spendOrAnswer()
          return
        }
        try {
          this.channel.spend()
        } catch (err) {
          // Refuse the TEXT that broke the limit by its seq, so its send() fails with REFUSED, not PEER_GONE;
          // the ACK_UPTO for the TEXTs before it goes first.
          this.onReadEnd()
          this.#queuedAck = undefined
          this.channel.send({ type: 'ACK', stream: msg.stream, seq: msg.seq, status: AckStatus.REFUSED })
          throw err
        }
        seen.highest = this.#ackSeq = msg.seq
        this.channel.delivered()
        if (this.#remoteIds.stream !== msg.stream) this.#remoteIds = new StreamIds(msg.stream)
        this.init.onMessage({
          id: this.#remoteIds.id(msg.seq),
          from,
          text: msg.text,
          sentAt: msg.sentAt,
          receivedAt: this.channel.receivedAt,
        })
        return
      }
      case 'ACK': {
        // Another stream's (an answer to a session this peer has since ended) or a send no longer
        // pending: work that settles nothing, so it costs the sender's rate budget, or a peer could
        // keep us decoding such frames for free.
        const p = msg.stream === this.stream ? this.#pending.get(msg.seq) : undefined
        if (!p) {
          this.channel.spend()
          return
        }
        if (msg.status === AckStatus.DELIVERED) {
          this.#settle(p)
          this.channel.acknowledged()
          this.#resolve(p, Date.now())
        } else {
          // Rejected before the room it frees is given on: a failed batch drops its unwritten texts first.
          p.reject(new PeerError('REFUSED', `${this.channel.peer.name} refused the message`))
          this.#settle(p)
        }
        return
      }
      case 'ACK_UPTO': {
        if (msg.stream !== this.stream) {
          this.channel.spend()
          return
        }
        // A lie (nothing can acknowledge a TEXT before it is sent) that would also settle, unsent, every
        // waiting send that the room it frees lets through.
        if (msg.seq >= this.nextSeq) {
          throw new ProtocolError('INVALID_FIELD', `an ACK_UPTO for seq ${msg.seq}, which was never sent`)
        }
        // A repeat (no higher than one already received) costs the budget, as a stray ACK does. One that
        // goes higher is free even if its sends already timed out: seqs only grow up to nextSeq.
        if (msg.seq <= this.#ackedUpTo) {
          this.channel.spend()
          return
        }
        this.#ackedUpTo = msg.seq
        const ackedAt = Date.now()
        // Pending is in seq order: settle from the front up to the acknowledged seq.
        for (let p = this.#pending.first(); p !== undefined && p.seq <= msg.seq; p = this.#pending.first()) {
          this.#settle(p)
          this.channel.acknowledged()
          this.#resolve(p, ackedAt)
        }
        return
      }
      default:
        throw new ProtocolError('INVALID_FIELD', `unexpected ${msg.type} on the chat channel`)
    }
  }

  /**
   * One cumulative acknowledgement for every TEXT of this read (PROTOCOL.md, "Acknowledgements"); while
   * the one before still waits unsent, it takes the new value instead (see `#queuedAck`). A sender keeps
   * one stream per link, so the stream is replaced too: only a misbehaving peer loses an acknowledgement.
   */
  onReadEnd(): void {
    this.#seen = undefined
    if (this.#ackSeq === 0 || !this.channel.online) return
    const queued = this.#queuedAck
    if (queued !== undefined && this.channel.queuedBytes > this.#queuedAfterAck) {
      queued.stream = this.#ackStream
      queued.seq = this.#ackSeq
    } else {
      const ack: AckUpToMessage = { type: 'ACK_UPTO', stream: this.#ackStream, seq: this.#ackSeq }
      this.channel.send(ack)
      // Queued rather than framed exactly when the channel's queue is not empty now: it is last in it.
      this.#queuedAck = this.channel.queuedBytes > 0 ? ack : undefined
      this.#queuedAfterAck = 0
    }
    this.#ackSeq = 0
  }

  /**
   * Bytes of our acknowledgements waiting unsent in the chat channel's queue: at most one ACK_UPTO.
   * They count against the remote's memory bound (unlike our own TEXTs, which the window bounds).
   */
  get queuedAckBytes(): number {
    return this.#queuedAck !== undefined && this.channel.queuedBytes > this.#queuedAfterAck
      ? ACK_UPTO_FRAME_BYTES
      : 0
  }

  /** Messages not yet acknowledged may have died with the old link: re-send; the receiver drops duplicates. */
  onResume(): void {
    this.#from = undefined
    this.#seen = undefined
    // A new link: a queued ACK_UPTO stayed with the old one, and the remote may re-send a window.
    this.#queuedAck = undefined
    this.#freeDuplicates = this.init.inFlightMessages
    for (const p of this.#pending.values()) this.channel.send(p)
  }

  onClose(error: PeerError): void {
    this.#closed = error
    clearTimeout(this.#paceTimer)
    this.#paceTimer = undefined
    for (const p of this.#pending.values()) p.reject(error)
    this.#pending.clear()
    this.#inFlightBytes = 0
    this.#waiting.drain((w) => {
      if (typeof w === 'function') w(error)
      else if (w.type === 'BATCH') w.fail(error)
      else if (!w.gone) w.reject(error)
    })
    this.#batchedWaiting = 0
    this.service.closed(this)
  }

  expire(now: number): void {
    for (const p of this.#pending.values()) {
      if (p.deadline > now) continue
      p.reject(
        new PeerError('ACK_TIMEOUT', `${this.channel.peer.name} did not acknowledge the message in time`),
      )
      this.#settle(p)
    }
  }

  // ---- sending --------------------------------------------------------------------------------

  /**
   * Sends now when there is room for more unacknowledged text; otherwise the send waits for room, in
   * order, and is written the moment an acknowledgement frees it: no extra promise or wake-up per
   * waiting send, and a plain one waits as four slots of a {@link WaitQueue}, not as an entry.
   */
  send(text: string, bytes: number, options?: SendOptions): Promise<SendResult> {
    if (this.#closed) return Promise.reject(this.#closed)
    const signal = options?.signal
    if (signal?.aborted) return Promise.reject(new PeerError('ABORTED', 'the send was aborted'))
    const queued = this.#waiting.length
    const now = queued === 0 && this.#hasRoom()
    // Texts of a batch wait too, but their caller holds them already: only single sends count.
    const waitingNow = queued - this.#batchedWaiting
    if (!now && waitingNow >= this.init.waiting) {
      return Promise.reject(
        new PeerError(
          'QUEUE_FULL',
          `${waitingNow} messages to ${this.channel.peer.name} already wait for room; try again later`,
        ),
      )
    }
    const promise = new Promise<SendResult>(captureResolvers)
    const timeout = options?.timeout
    if (!now && signal === undefined && timeout === undefined) {
      // A plain send that waits: no entry until its turn (see WaitQueue).
      this.#waiting.pushPlain(text, bytes, capturedResolve, capturedReject)
      if (queued === 0) this.#paceLater()
      return promise
    }
    const entry = this.#entry(text, bytes, timeout ?? this.init.ackTimeout, capturedResolve, capturedReject)
    if (signal) this.#abortOn(signal, entry)
    if (now) this.#write(entry)
    else {
      this.#waiting.pushEntry(entry)
      if (queued === 0) this.#paceLater()
    }
    return promise
  }

  /**
   * Sends `texts` in order with one promise for all (see `Peer.sendMany`): each text is still its own
   * pending entry and TEXT, made only when the window admits it, and acknowledged through one shared
   * callback instead of a promise each. The first failure rejects the batch and drops the texts not yet
   * written; an abort also frees the window room of the written ones.
   */
  sendMany(
    texts: readonly string[],
    bytes: readonly number[],
    options?: SendOptions,
  ): Promise<SendManyResult> {
    if (this.#closed) return Promise.reject(this.#closed)
    const signal = options?.signal
    if (signal?.aborted) return Promise.reject(new PeerError('ABORTED', 'the send was aborted'))
    const peerId = this.#peer.id
    const n = texts.length
    if (n === 0) return Promise.resolve({ peerId, count: 0, firstId: '', lastId: '', ackedAt: Date.now() })
    const timeout = options?.timeout ?? this.init.ackTimeout
    // Our own copy: the caller may reuse its array while the batch is still being written.
    const list = texts.slice()
    return new Promise<SendManyResult>((resolve, reject) => {
      let left = n
      let done = false
      /** `list[next]` is the first not yet written; the written ones have seqs firstSeq…lastSeq. */
      let next = 0
      let firstSeq = 0
      let lastSeq = 0
      const finish = () => {
        done = true
        signal?.removeEventListener('abort', onAbort)
      }
      // The texts not yet written are never written once the batch is done.
      const fail = (error: PeerError) => {
        if (done) return
        finish()
        reject(error)
      }
      const ok = (ackedAt: number) => {
        if (done || --left > 0) return
        finish()
        resolve({
          peerId,
          count: n,
          firstId: this.#ids.id(firstSeq),
          lastId: this.#ids.id(lastSeq),
          ackedAt,
        })
      }
      const onAbort = () => {
        if (done) return
        // Unwritten texts are dropped first, so the room the written ones free is not given to them.
        fail(new PeerError('ABORTED', 'the send was aborted'))
        for (let seq = firstSeq; seq !== 0 && seq <= lastSeq; seq++) {
          const p = this.#pending.get(seq)
          if (p?.acked === ok) this.#settle(p)
        }
      }
      // While a batch is being written it is at the head of the queue, so nothing else is written
      // between its texts: their seqs are consecutive.
      const writeSome = (): boolean => {
        while (next < n && !done && this.#hasRoom()) {
          const entry = this.#entry(list[next]!, bytes[next]!, timeout, IGNORED, fail, ok)
          next++
          this.#write(entry)
          if (firstSeq === 0) firstSeq = entry.seq
          lastSeq = entry.seq
        }
        return next === n || done
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      const queued = this.#waiting.length
      if (queued === 0 && writeSome()) return
      this.#waiting.pushEntry({ type: 'BATCH', writeSome, fail })
      this.#batchedWaiting++
      if (queued === 0) this.#paceLater()
    })
  }

  /** Numbers the TEXT, records it as pending until its acknowledgement (or a failure), and writes it. */
  #write(entry: Pending): void {
    const now = coarseNow()
    this.#pace?.take(1, now)
    entry.seq = this.nextSeq++
    entry.sentAt = now
    entry.deadline = now + entry.timeout
    this.#pending.push(entry)
    this.#inFlightBytes += entry.bytes
    try {
      // While reconnecting, the message waits in `pending` and goes out on the new link.
      if (this.channel.online) {
        if (this.#queuedAck === undefined) this.channel.send(entry)
        else this.#sendBehindAck(entry)
      }
    } catch (err) {
      // Not written (the codec refused it): fail this send now rather than leave it to time out. Rejected
      // before the room it frees is given on: a failed batch writes nothing more.
      entry.reject(err as PeerError)
      this.#settle(entry)
    }
  }

  /** Sends a TEXT while an ACK_UPTO may wait in the queue, counting what queues behind it. */
  #sendBehindAck(entry: Pending): void {
    const before = this.channel.queuedBytes
    if (before <= this.#queuedAfterAck) {
      // The ACK_UPTO has gone out since: nothing to track any more.
      this.#queuedAck = undefined
      this.channel.send(entry)
      return
    }
    this.channel.send(entry)
    this.#queuedAfterAck += this.channel.queuedBytes - before
  }

  /** A duplicate past the free ones costs the rate budget; the TEXTs before it are acknowledged first. */
  #spendOrAnswer(): void {
    try {
      this.channel.spend()
    } catch (err) {
      this.onReadEnd()
      throw err
    }
  }

  /** An abort fails the send at once: a waiting one is skipped, a pending one frees its room. */
  #abortOn(signal: AbortSignal, entry: Pending): void {
    const { resolve, reject } = entry
    const onAbort = () => {
      if (entry.seq === 0) {
        if (entry.gone) return
        entry.gone = true
      } else {
        if (this.#pending.get(entry.seq) !== entry) return
        this.#settle(entry)
      }
      reject(new PeerError('ABORTED', 'the send was aborted'))
    }
    signal.addEventListener('abort', onAbort, { once: true })
    entry.resolve = (r) => {
      signal.removeEventListener('abort', onAbort)
      resolve(r)
    }
    entry.reject = (e) => {
      signal.removeEventListener('abort', onAbort)
      reject(e)
    }
  }

  #resolve(p: Pending, ackedAt: number): void {
    if (p.acked !== undefined) p.acked(ackedAt)
    else p.resolve({ id: this.#ids.id(p.seq), peerId: this.#peer.id, ackedAt })
  }

  /** Removes a pending send and lets a waiting send use the room it frees. */
  #settle(p: Pending): void {
    if (!this.#pending.delete(p.seq)) return
    this.#inFlightBytes -= p.bytes
    this.#admit()
    if (this.#pending.size === 0) this.service.settledOne()
  }

  /** Writes waiting sends, oldest first, while there is room. */
  #admit(): void {
    const waiting = this.#waiting
    while (waiting.length > 0 && this.#hasRoom()) {
      const next = waiting.head()!
      if (typeof next === 'string') {
        const entry = this.#entry(
          next,
          waiting.headBytes,
          this.init.ackTimeout,
          waiting.headResolve,
          waiting.headReject,
        )
        waiting.drop()
        this.#write(entry)
        continue
      }
      if (next.type === 'BATCH') {
        // Room ran out within the batch: it keeps its place at the head.
        if (!next.writeSome()) break
        waiting.drop()
        this.#batchedWaiting--
        continue
      }
      waiting.drop()
      if (!next.gone) this.#write(next)
    }
    this.#paceLater()
  }

  /**
   * When sends wait only for the pace (the window has room), admits them again once a token is back. An
   * acknowledgement admits them too; this is for when none is coming.
   */
  #paceLater(): void {
    const pace = this.#pace
    if (pace === undefined || this.#paceTimer !== undefined || this.#waiting.length === 0) return
    if (!this.#windowHasRoom() || this.#closed) return
    const ms = Math.max(1, Math.ceil(((1 - pace.available(coarseNow())) * 1000) / pace.perSecond))
    this.#paceTimer = setTimeout(() => {
      this.#paceTimer = undefined
      this.#admit()
    }, ms)
    this.#paceTimer.unref?.()
  }

  #entry(
    text: string,
    bytes: number,
    timeout: number,
    resolve: (r: SendResult) => void,
    reject: (e: PeerError) => void,
    acked?: (ackedAt: number) => void,
  ): Pending {
    return {
      type: 'TEXT',
      stream: this.stream,
      seq: 0,
      sentAt: 0,
      text,
      bytes,
      deadline: 0,
      timeout,
      resolve,
      reject,
      acked,
      gone: false,
    }
  }

  #hasRoom(): boolean {
    return this.#windowHasRoom() && (this.#pace === undefined || this.#pace.available(coarseNow()) >= 1)
  }

  #windowHasRoom(): boolean {
    return this.#pending.size < this.#maxInFlight && this.#inFlightBytes < this.init.inFlightBytes
  }
}
