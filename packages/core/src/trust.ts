import type { PeerAnnouncement } from '@parley/protocol'
import { fingerprint } from './identity.js'
import { type KnownPeers, keyChangedMessage } from './known-peers.js'
import { PeerError } from './peer-errors.js'
import type { KeyChange, PendingKeyChange } from './peer-types.js'

/** Key changes remembered for the user to decide on. */
const MAX_PENDING_CHANGES = 64

/**
 * A peer is its key. Addresses and names are remembered with the key first seen for them (trust on
 * first use, `KnownPeers`); a dial that reaches another key is refused unless the user accepts it, and
 * a peer dialing in that claims a saved address or name with another key is reported — with both
 * fingerprints — and never takes the saved peer's place. Accepting a change is the user's decision per
 * peer, recorded in the known-peers store.
 */
export class Trust {
  readonly #pending = new Map<string, PendingKeyChange>()

  constructor(
    readonly known: KnownPeers,
    readonly onKeyChange: ((change: KeyChange) => boolean | Promise<boolean>) | undefined,
    readonly report: (err: PeerError) => void,
    /** Other keys known first-hand by `name` (the peer store): a saved address does not take their name. */
    readonly othersNamed: (name: string, peerId: string) => boolean = () => false,
  ) {}

  /**
   * The key that answered at `address` we dialed must be the one saved for it, unless accepted (by the
   * `onKeyChange` callback, or earlier by the user). @throws PeerError KEY_CHANGED
   */
  async checkDialed(address: string, remote: PeerAnnouncement, steered = false): Promise<void> {
    const verdict = this.known.check(address, remote.peerId)
    if (verdict.status === 'mismatch') {
      const change = {
        address,
        name: verdict.name || remote.name,
        expected: verdict.expected,
        actual: remote.peerId,
      }
      const accepted = (await this.onKeyChange?.(change)) ?? false
      if (!accepted) {
        this.#remember({ ...change, direction: 'outbound', seenAt: Date.now() })
        throw new PeerError(
          'KEY_CHANGED',
          keyChangedMessage(address, change.name, change.expected, change.actual),
        )
      }
    }
    if (verdict.status !== 'match') this.#save(address, remote.peerId, remote.name, steered)
  }

  /** A peer dialed in: report any saved address or name it claims under another key. Never throws. */
  checkInbound(remote: PeerAnnouncement): void {
    for (const address of remote.listenAddrs) {
      const verdict = this.known.check(address, remote.peerId)
      if (verdict.status !== 'mismatch') continue
      const change = {
        address,
        name: verdict.name || remote.name,
        expected: verdict.expected,
        actual: remote.peerId,
      }
      this.#remember({ ...change, direction: 'inbound', seenAt: Date.now() })
      this.report(
        new PeerError(
          'KEY_CHANGED',
          `a peer with key ${fingerprint(remote.peerId)} dialed in claiming ${address}, saved for ` +
            `${change.name || 'another peer'} with key ${fingerprint(verdict.expected)}: it may be an impostor; ` +
            'sends to that address still go to the saved key',
        ),
      )
    }
    const owner = this.nameOwner(remote.name)
    if (owner !== undefined && owner !== remote.peerId) {
      this.report(
        new PeerError(
          'KEY_CHANGED',
          `a peer with key ${fingerprint(remote.peerId)} calls itself "${remote.name}", a name saved for key ` +
            `${fingerprint(owner)}: it may be an impostor; the name keeps meaning the saved key`,
        ),
      )
    }
  }

  /** The key a name was saved with, if exactly one saved entry has it. */
  nameOwner(name: string): string | undefined {
    if (name === '') return undefined
    let owner: string | undefined
    for (const e of this.known.entries()) {
      if (e.name !== name) continue
      if (owner !== undefined && owner !== e.peerId) return undefined
      owner = e.peerId
    }
    return owner
  }

  pending(): PendingKeyChange[] {
    return [...this.#pending.values()]
  }

  /**
   * The user accepts the key last seen at `address` (or the given one): it replaces the saved key.
   * @throws PeerError UNKNOWN_PEER when no change is pending for the address.
   */
  async accept(address: string, peerId?: string): Promise<KeyChange> {
    const change = this.#pending.get(address)
    const actual = peerId ?? change?.actual
    if (actual === undefined || !/^[0-9a-f]{64}$/.test(actual)) {
      throw new PeerError('UNKNOWN_PEER', `no key change is waiting for ${address}`)
    }
    this.#pending.delete(address)
    const name = change?.name ?? ''
    await this.known.remember(address, actual, name)
    return { address, name, expected: change?.expected ?? '', actual }
  }

  #remember(change: PendingKeyChange): void {
    // A claim (a peer dialing in) proves nothing: it never replaces a change a dial of ours verified,
    // which the user may be about to accept by its address.
    if (change.direction === 'inbound' && this.#pending.get(change.address)?.direction === 'outbound') return
    this.#pending.delete(change.address)
    this.#pending.set(change.address, change)
    if (this.#pending.size > MAX_PENDING_CHANGES) this.#pending.delete(this.#pending.keys().next().value!)
  }

  #save(address: string, peerId: string, name: string, steered: boolean): void {
    // A dial someone else steered (a peer-exchange record, a mesh walk) must not make a name mean its
    // key when another key is already known by it, saved elsewhere or first-hand: the name stays theirs.
    // The user's own dials save the name as always.
    const taken =
      steered &&
      name !== '' &&
      (this.known.entries().some((e) => e.name === name && e.peerId !== peerId && e.address !== address) ||
        this.othersNamed(name, peerId))
    this.known.remember(address, peerId, taken ? '' : name).catch((cause: unknown) =>
      this.report(
        new PeerError(
          'KNOWN_PEERS_WRITE_FAILED',
          `could not save the key of ${address}: ${(cause as Error).message}`,
          {
            cause,
          },
        ),
      ),
    )
  }
}
