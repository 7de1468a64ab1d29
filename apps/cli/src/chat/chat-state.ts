import { fingerprint, looksLikeId, type PeerInfo, type ReceivedMessage } from '@parley/core'
import { displayWidth, sanitize } from '../view/format.js'
import { lookalikeNote, skeleton } from '../view/names.js'
import type { PeerRef } from '../view/reporter.js'
import { FoldStore } from './fold.js'

/** Names remembered to tell namesakes apart; beyond this the oldest are forgotten (bounds memory). */
const MAX_NAMES = 1_024

/** What `/to` takes for everyone (broadcast), in any case. */
const EVERYONE = new Set(['*', 'everyone', 'all'])
export const meansEveryone = (word: string): boolean => EVERYONE.has(word.toLowerCase())
/** Peers with unread messages tracked at once. */
const MAX_UNREAD = 256

/**
 * What the chat view remembers: whom you talk to, who wrote last, what is unread, which names
 * more than one peer uses (those get a fingerprint on screen), and the folded long messages.
 */
export class ChatState {
  /** The current conversation; undefined = everyone (broadcast). */
  conversation: PeerRef | undefined
  lastSender: PeerRef | undefined
  readonly unread = new Map<string, { name: string; count: number }>()
  readonly folds = new FoldStore()
  readonly #ids = new Map<string, Set<string>>()
  /** Names seen, by skeleton: two names in one set look alike. */
  readonly #skeletons = new Map<string, Set<string>>()
  #knownIndex: { at: number; map: Map<string, string[]> } | undefined
  readonly #namedCache = new Map<string, { at: number; keys: readonly string[] }>()

  /**
   * @param known names of peers known from before (saved with their keys), which a newcomer's name may
   *   imitate even when they are not connected now
   */
  constructor(
    readonly self: PeerRef,
    readonly known: () => Iterable<string> = () => [],
    /** The peer ids a name may mean (core's `namedKeys`): a name that means another key needs a fingerprint. */
    readonly namedKeys: (name: string) => readonly string[] = () => [],
  ) {}

  /** Remembers a peer's name (call for every peer seen). */
  see(p: PeerRef): void {
    // Namesakes are names that print the same, whatever the screen does not show.
    const shown = sanitize(p.name)
    let ids = this.#ids.get(shown)
    if (!ids) {
      if (this.#ids.size >= MAX_NAMES) this.#ids.delete(this.#ids.keys().next().value as string)
      ids = new Set()
      this.#ids.set(shown, ids)
    }
    if (ids.size < 16) ids.add(p.id)
    const key = skeleton(p.name)
    let names = this.#skeletons.get(key)
    if (!names) {
      if (this.#skeletons.size >= MAX_NAMES)
        this.#skeletons.delete(this.#skeletons.keys().next().value as string)
      names = new Set()
      this.#skeletons.set(key, names)
    }
    if (names.size < 16) names.add(p.name)
  }

  /** `⚠ (look-alike of bob)` when the name looks like another one seen (or yours), or hides characters. */
  lookalike(p: PeerRef): string | undefined {
    this.see(p)
    const key = skeleton(p.name)
    const others = [...(this.#skeletons.get(key) ?? []), this.self.name]
    others.push(...(this.#knownBySkeleton().get(key) ?? []))
    return lookalikeNote(p.name, others)
  }

  /** `namedKeys(name)`, asked at most every 2 s per name (labels are drawn on every line). */
  #keysNamed(name: string): readonly string[] {
    const now = Date.now()
    const cached = this.#namedCache.get(name)
    if (cached !== undefined && now - cached.at < 2_000) return cached.keys
    if (this.#namedCache.size >= MAX_NAMES) this.#namedCache.clear()
    const keys = this.namedKeys(name)
    this.#namedCache.set(name, { at: now, keys })
    return keys
  }

  /** The known names by skeleton, rebuilt at most every 2 s (labels are drawn on every line). */
  #knownBySkeleton(): Map<string, string[]> {
    const now = Date.now()
    if (this.#knownIndex !== undefined && now - this.#knownIndex.at < 2_000) return this.#knownIndex.map
    const map = new Map<string, string[]>()
    let n = 0
    for (const name of this.known()) {
      if (++n > MAX_NAMES * 4) break
      const key = skeleton(name)
      const list = map.get(key)
      if (!list) map.set(key, [name])
      else if (list.length < 16) list.push(name)
    }
    this.#knownIndex = { at: now, map }
    return map
  }

  /** A message arrived: it may be unread (when you talk to someone else) and is what /r answers. */
  received(m: ReceivedMessage): void {
    this.see(m.from)
    this.lastSender = { id: m.from.id, name: m.from.name }
    const talkingTo = this.conversation
    if (talkingTo === undefined || talkingTo.id === m.from.id) return
    const entry = this.unread.get(m.from.id)
    if (entry) entry.count++
    else if (this.unread.size < MAX_UNREAD) this.unread.set(m.from.id, { name: m.from.name, count: 1 })
  }

  /** Switches the conversation (undefined = everyone) and marks that peer's messages read. */
  talkTo(p: PeerRef | undefined): void {
    this.conversation = p
    if (p) this.unread.delete(p.id)
    else this.unread.clear()
  }

  get unreadCount(): number {
    let n = 0
    for (const u of this.unread.values()) n += u.count
    return n
  }

  /**
   * Whether a name on screen needs its fingerprint: namesakes, a peer named like you, a name that
   * `/to` takes for everyone (a peer called `everyone` would have the broadcast prompt), one written
   * like an id (it could pass for another peer's fingerprint), or one that means another key too
   * (saved with it, or known first-hand by it: the alice you knew, away now).
   */
  ambiguous(p: PeerRef): boolean {
    this.see(p)
    const shown = sanitize(p.name)
    return (
      (this.#ids.get(shown)?.size ?? 0) > 1 ||
      (shown === sanitize(this.self.name) && p.id !== this.self.id) ||
      meansEveryone(shown) ||
      looksLikeId(shown) ||
      this.#keysNamed(p.name).some((id) => id !== p.id)
    )
  }

  /**
   * `bob`, or `bob (ab12…)` when the name is not unique, or `bob\u200b ⚠ (look-alike of bob) (ab12…)`
   * when it looks like another name or hides characters: those always show the fingerprint.
   */
  label(p: PeerRef): string {
    const name = sanitize(p.name)
    // Named by its fingerprint already (a relayed origin whose name was not its own to give).
    if (name === fingerprint(p.id)) return name
    const note = this.lookalike(p)
    if (note !== undefined) return `${name} ${note} (${fingerprint(p.id)})`
    return this.ambiguous(p) ? `${name} (${fingerprint(p.id)})` : name
  }

  /** Status line text: name, address, conversation, peers, unread. */
  /**
   * The status line: who we are, where we listen, the peers, the unread count, `extra` (transfers
   * running) and the help hint. Within `width` columns the help hint gives way first, then the peer
   * list (fewer names, then the count alone), then the names of unread senders, so the unread count
   * and the transfers stay in sight.
   */
  status(
    listen: string,
    connected: readonly PeerInfo[],
    extra: readonly string[] = [],
    width = Infinity,
  ): string {
    const names = connected.map((p) => this.label(p))
    const unread = this.unreadCount
    const from = [...this.unread.values()].map((u) => sanitize(u.name)).slice(0, 3)
    const line = (shownNames: number, help = false, senders = true) => {
      const count = `${connected.length} peer${connected.length === 1 ? '' : 's'}`
      const more = names.length - shownNames
      const peers =
        connected.length === 0
          ? 'no peers'
          : shownNames === 0
            ? count
            : `${count}: ${names.slice(0, shownNames).join(', ')}${more > 0 ? ` +${more}` : ''}`
      return [
        ` ${sanitize(this.self.name)}`,
        listen,
        peers,
        unread === 0 ? 'no unread' : senders ? `${unread} unread (${from.join(', ')})` : `${unread} unread`,
        ...extra,
        ...(help ? ['/help'] : []),
      ].join(' · ')
    }
    let shown = Math.min(4, names.length)
    let text = line(shown, true)
    if (displayWidth(text) <= width) return text
    text = line(shown)
    while (shown > 0 && displayWidth(text) > width) text = line(--shown)
    // Then who the unread messages are from (the count stays): a long name must not push the
    // transfers off the line.
    if (displayWidth(text) > width) text = line(0, false, false)
    return text
  }
}
