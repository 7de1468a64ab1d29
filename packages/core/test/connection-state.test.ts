import { describe, expect, it } from 'vitest'
import { LinkState } from '../src/connection-state.js'

describe('connection states', () => {
  it('follows dialing → handshaking → open → closing → closed', () => {
    const s = new LinkState('dialing')
    for (const next of ['handshaking', 'open', 'closing', 'closed'] as const) {
      expect(s.advance(next)).toBe(true)
      expect(s.status).toBe(next)
    }
  })

  it('never reopens a closed connection nor skips the handshake', () => {
    const s = new LinkState('dialing')
    expect(s.advance('open')).toBe(false)
    expect(s.status).toBe('dialing')
    s.advance('closed')
    for (const next of ['dialing', 'handshaking', 'open', 'closing'] as const)
      expect(s.advance(next)).toBe(false)
    expect(s.status).toBe('closed')
  })
})
