import type { ConnectionManager } from './connection-manager.js'
import { CHAT_PROTOCOL, type ChatHandler } from './services/chat.js'
import type { Session } from './session.js'

/**
 * Sessions this peer opened only to deliver a `send()` (not a `connect()`): closed once no message went
 * either way for `timeout` and nothing waits for an acknowledgement, unless `retain` keeps them. A
 * `connect()` to the peer makes the session the user's (`delete`).
 */
export class TransientSessions {
  /** Messages counted either way at the last change, and when. */
  readonly #sessions = new Map<string, { activity: number; at: number }>()

  add(session: Session): void {
    this.#sessions.set(session.id, { activity: session.messagesIn + session.messagesOut, at: Date.now() })
  }

  /** No longer transient (the user connected to it). Returns whether it was. */
  delete(id: string): boolean {
    return this.#sessions.delete(id)
  }

  tick(
    now: number,
    manager: ConnectionManager,
    timeout: number | false,
    retain: ((peerId: string) => boolean) | undefined,
  ): void {
    if (timeout === false || this.#sessions.size === 0) return
    for (const [id, t] of this.#sessions) {
      const session = manager.sessions.get(id)
      if (!session) {
        this.#sessions.delete(id)
        continue
      }
      const activity = session.messagesIn + session.messagesOut
      const busy = (session.handler(CHAT_PROTOCOL) as ChatHandler | undefined)?.pendingCount ?? 0
      if (activity !== t.activity || busy > 0 || retain?.(id) === true) {
        // Kept (or used) now: the idle time counts from here.
        t.activity = activity
        t.at = now
        continue
      }
      if (now - t.at < timeout) continue
      this.#sessions.delete(id)
      manager.wanted.delete(id)
      if (session.online) void manager.disconnect(session, 'idle: opened for one send').catch(() => {})
      else manager.endSession(session, 'local', 'idle: opened for one send')
    }
  }
}
