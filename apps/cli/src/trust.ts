import { fingerprint, type PendingKeyChange } from '@parley/core'
import { connectTo } from './actions.js'
import type { App } from './app-context.js'
import { explain } from './errors.js'
import { ago, sanitize } from './view/format.js'

/**
 * `/trust`, menu "Key changes" and `trust`: the key changes core saw (a dial reached another key, or a
 * peer dialing in claimed a saved address) wait here for the user's decision, one peer at a time.
 */

/** Lists the pending key changes: both fingerprints, or both whole keys with `full`. */
export function showKeyChanges(app: App, full: boolean, now = Date.now()): void {
  const changes = app.peer.keyChanges()
  if (changes.length === 0) {
    app.reporter.note('no key changes are waiting for a decision', 'trust')
    return
  }
  const key = (id: string) => (full ? id : fingerprint(id))
  const lines = changes.map((c) => {
    const who = c.name === '' ? '' : ` (${sanitize(c.name)})`
    const how =
      c.direction === 'outbound'
        ? 'answered when dialed'
        : 'dialed in claiming this address — may be an impostor'
    return `  ${sanitize(c.address)}${who}: saved key ${key(c.expected)}, new key ${key(c.actual)} ${how}, ${ago(c.seenAt, now)}`
  })
  app.reporter.note(
    [
      `key changes waiting for your decision (${changes.length}):`,
      ...lines,
      `  check the new key with the peer's owner by another channel, then accept it with /trust <address> (trust <address> without the chat view)${full ? '' : '; /trust --full shows whole keys'}`,
    ].join('\n'),
    'trust',
  )
}

/** Accepts the key change pending for `address`: core saves the new key in the known-peers file. */
export async function acceptKey(app: App, address: string): Promise<boolean> {
  const pending = findChange(app.peer.keyChanges(), address)
  try {
    const change = await app.peer.acceptKeyChange(pending?.address ?? address)
    app.reporter.note(
      `accepted the new key ${fingerprint(change.actual)} for ${sanitize(change.address)}${change.name === '' ? '' : ` (${sanitize(change.name)})`}; it is saved, and the old key ${change.expected === '' ? '' : `${fingerprint(change.expected)} `}is no longer trusted there`,
      'trust',
    )
    app.logger.log('info', 'key change accepted', { address: change.address, peer: change.actual })
    // Our own dial met the new key and was refused: the user wanted that peer, so dial it again now.
    const connected = app.peer.peers().connected.some((p) => p.id === change.actual)
    if (pending?.direction === 'outbound' && !connected) await connectTo(app, change.address)
    return true
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code
    app.reporter.problem(
      code === 'UNKNOWN_PEER'
        ? {
            code: 'UNKNOWN_PEER',
            sentence: `no key change is waiting for ${sanitize(address)} — /trust lists the ones that are`,
          }
        : explain(err, { address }),
      err,
    )
    return false
  }
}

/** The change `text` names: its address, or the name or fingerprint of its new key (when unique). */
function findChange(changes: readonly PendingKeyChange[], text: string): PendingKeyChange | undefined {
  const exact = changes.find((c) => c.address === text)
  if (exact) return exact
  const lower = text.replace(/:/g, '').toLowerCase()
  const hits = changes.filter(
    (c) =>
      (c.name !== '' && c.name === text) ||
      (lower.length >= 8 && c.actual.startsWith(lower)) ||
      fingerprint(c.actual) === text,
  )
  return hits.length === 1 ? hits[0] : undefined
}

/**
 * Peer `error` events worth telling the user even without --debug: someone presenting another key
 * for a saved address or name, and keys that could not be saved. Returns whether it was reported.
 */
export function reportPeerError(app: Pick<App, 'peer' | 'reporter'>, err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  if (code === 'KEY_CHANGED') {
    const message = err instanceof Error ? err.message : ''
    // Inbound claims leave a pending change; the message names its address.
    const change = app.peer
      .keyChanges()
      .filter((c) => c.direction === 'inbound' && message.includes(c.address))
      .at(-1)
    // A name claim leaves nothing to accept: core's sentence (both fingerprints) says it all.
    // A claim proves nothing: the advice is to check the fingerprint first, or to dial the address.
    app.reporter.problem(
      change
        ? {
            code: 'KEY_CHANGED',
            sentence: `${sanitize(message)} — dial ${sanitize(change.address)} to see who answers there; only if ${fingerprint(change.actual)} is the peer's new key (ask its owner), /trust ${sanitize(change.address)} accepts it`,
          }
        : { code: 'KEY_CHANGED', sentence: sanitize(message) },
      err,
    )
    return true
  }
  if (code === 'KNOWN_PEERS_WRITE_FAILED') {
    app.reporter.problem(explain(err), err)
    return true
  }
  return false
}
