import { resolve } from 'node:path'
import { looksLikeId, type Peer } from '@parley/core'
import { type FileService, type IncomingOffer, printable, untilAborted } from '@parley/files'
import { BotError } from '../errors.js'
import { deadline } from '../wait.js'
import type { OfferStep, WaitFileStep } from './types.js'

/** Offers remembered for `wait-file` (oldest dropped first); each expires on its own after a minute. */
const OFFER_LIMIT = 64

/**
 * The file steps of a script: `offer` sends a file and waits until the receiver saved it; `wait-file`
 * takes the oldest matching offer (including ones that came before the step began), accepts it into
 * the download folder and waits until it is verified and saved.
 */
export class ScriptFiles {
  readonly #offers: IncomingOffer[] = []
  #waiters: Array<() => void> = []
  readonly #onOffer = (offer: IncomingOffer) => {
    this.#offers.push(offer)
    if (this.#offers.length > OFFER_LIMIT) this.#offers.shift()
    this.log(`⇣ ${printable(offer.from.name)} offers ${printable(offer.offeredName)} (${offer.size} bytes)`)
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w()
  }

  constructor(
    readonly service: FileService,
    readonly peer: Peer,
    readonly log: (line: string) => void,
  ) {
    service.on('offer', this.#onOffer)
  }

  detach(): void {
    this.service.off('offer', this.#onOffer)
  }

  /** Offers `step.file` to `step.to` (a connected peer's name, id, id prefix or address). */
  async offer(step: OfferStep, timeout: number, parent?: AbortSignal): Promise<void> {
    const to = this.#connected(step.to)
    if (!to) throw new BotError('USAGE', `no connected peer matches "${step.to}"`)
    const limit = deadline(timeout, parent)
    try {
      const transfer = await this.service.offer(to.id, resolve(step.file), {
        signal: limit.signal,
        ...(step.name !== undefined ? { name: step.name } : {}),
      })
      this.log(`⇡ offered ${transfer.name} (${transfer.size} bytes) to ${printable(to.name)}`)
      await untilAborted(transfer.finished, limit.signal)
      this.log(`⇡ ${printable(to.name)} saved ${transfer.name} (root ${transfer.root.slice(0, 16)}…)`)
    } catch (err) {
      throw limit.signal.aborted && limit.signal.reason instanceof BotError
        ? new BotError(limit.signal.reason.code, `${step.file} was not received within ${timeout} ms`)
        : err
    } finally {
      limit.clear()
    }
  }

  /** Accepts the oldest matching offer and waits until the file is saved; returns where. */
  async waitFile(step: WaitFileStep, timeout: number, parent?: AbortSignal): Promise<string> {
    const limit = deadline(timeout, parent)
    const matches = (o: IncomingOffer) =>
      o.status === 'pending' &&
      (step.name === undefined || o.offeredName === step.name || o.name === step.name) &&
      (step.from === undefined || o.from.name === step.from || isIdPrefix(step.from, o.from.id))
    const what = `${step.name ?? 'a file'}${step.from === undefined ? '' : ` from ${step.from}`}`
    try {
      let offer = this.#offers.find(matches)
      while (!offer) {
        await untilAborted(new Promise<void>((r) => this.#waiters.push(r)), limit.signal)
        offer = this.#offers.find(matches)
      }
      this.#offers.splice(this.#offers.indexOf(offer), 1)
      // The deadline also cancels the download: a timed-out step leaves nothing running.
      const download = await offer.accept({ signal: limit.signal })
      const { path } = await untilAborted(download.finished, limit.signal)
      this.log(`⇣ saved ${offer.name} from ${printable(offer.from.name)} at ${printable(path)}`)
      return path
    } catch (err) {
      throw limit.signal.aborted && limit.signal.reason instanceof BotError
        ? new BotError(limit.signal.reason.code, `${what} was not received within ${timeout} ms`)
        : err
    } finally {
      limit.clear()
    }
  }

  /**
   * The connected peer `target` names, as core's `send` resolves it: its id, the address it was reached
   * at (never one it only claims), an id prefix, then a name that means this one key (names are claims).
   */
  #connected(target: string) {
    const connected = this.peer.peers().connected
    const exact = connected.find((p) => p.id === target || p.address === target || isIdPrefix(target, p.id))
    if (exact || looksLikeId(target)) return exact
    const keys = this.peer.namedKeys(target)
    if (keys.length > 1) return undefined
    const byName = connected.filter((p) => p.name === target && (keys.length === 0 || keys[0] === p.id))
    return byName.length === 1 ? byName[0] : undefined
  }
}

/** An id prefix names a peer only with at least 8 hex digits: a shorter one matches too many ids. */
function isIdPrefix(prefix: string, id: string): boolean {
  return /^[0-9a-f]{8,}$/.test(prefix) && id.startsWith(prefix)
}
