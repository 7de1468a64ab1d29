import { createPublicKey, verify } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { ProtocolError } from '@parley/protocol'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  decodeGossip,
  decodeGossipControl,
  decodeMesh,
  encodeGossip,
  encodeGossipControl,
  encodeMesh,
  type GossipControl,
  type GossipMessage,
  gossipSigningBytes,
  type MeshMessage,
} from '../src/codec.js'
import { identityFromSeed } from '../src/simulation.js'

/** The vectors table of docs/MESH.md: `| TYPE | `json` | `hex` |` (cells padded by the formatter). */
function vectors(): { type: string; json: Record<string, unknown>; hex: string }[] {
  const doc = readFileSync(new URL('../../../docs/MESH.md', import.meta.url), 'utf8')
  const rows = [...doc.matchAll(/^\| ([A-Z_]+) *\| `(\{.*\})` *\| `([0-9a-f]+)` *\|$/gm)]
  return rows.map((m) => ({ type: m[1]!, json: JSON.parse(m[2]!), hex: m[3]! }))
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof ProtocolError) return err.code
    throw err
  }
  return undefined
}

const CONTROL = ['IHAVE', 'GRAFT', 'PRUNE']
const decoderOf = (type: string) =>
  type === 'GOSSIP' ? decodeGossip : CONTROL.includes(type) ? decodeGossipControl : decodeMesh
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const bytes = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'))

describe('mesh codec', () => {
  it('docs/MESH.md has a vector for every message, and each one round-trips byte for byte', () => {
    const all = vectors()
    expect(all.map((v) => v.type).sort()).toEqual(
      [
        'DISCONNECT',
        'FORWARD_JOIN',
        'GOSSIP',
        'GRAFT',
        'IHAVE',
        'JOIN',
        'NEIGHBOR',
        'NEIGHBOR_REPLY',
        'PRUNE',
        'SHUFFLE',
        'SHUFFLE_REPLY',
      ].sort(),
    )
    for (const v of all) {
      if (v.type === 'GOSSIP') {
        const msg = { ...v.json, signature: bytes(v.json.signature as string) } as unknown as GossipMessage
        expect(hex(encodeGossip(msg))).toBe(v.hex)
        expect(decodeGossip(bytes(v.hex))).toEqual(msg)
      } else if (CONTROL.includes(v.type)) {
        expect(hex(encodeGossipControl(v.json as GossipControl))).toBe(v.hex)
        expect(decodeGossipControl(bytes(v.hex))).toEqual(v.json)
      } else {
        expect(hex(encodeMesh(v.json as MeshMessage))).toBe(v.hex)
        expect(decodeMesh(bytes(v.hex))).toEqual(v.json)
      }
    }
  })

  it('the GOSSIP vector is signed by the identity of seed 01×32, and node:crypto agrees with libsodium', () => {
    const v = vectors().find((x) => x.type === 'GOSSIP')!
    const msg = decodeGossip(bytes(v.hex))
    const identity = identityFromSeed(new Uint8Array(32).fill(1))
    expect(msg.origin).toBe(identity.peerId)
    const signed = gossipSigningBytes(msg.id, msg.origin, msg.sentAt, msg.text)
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(msg.origin, 'hex').toString('base64url') },
      format: 'jwk',
    })
    expect(verify(null, signed, key, msg.signature)).toBe(true)
    // Any altered field breaks it.
    const altered = gossipSigningBytes(msg.id, msg.origin, msg.sentAt, 'hello mesH')
    expect(verify(null, altered, key, msg.signature)).toBe(false)
  })

  it('refuses crafted bodies with the code of what is wrong', () => {
    expect(codeOf(() => decodeMesh(new Uint8Array()))).toBe('EMPTY_FRAME')
    expect(codeOf(() => decodeMesh(bytes('09')))).toBe('UNKNOWN_TYPE')
    expect(codeOf(() => decodeMesh(bytes('010d31302e')))).toBe('TRUNCATED')
    expect(codeOf(() => decodeMesh(bytes('0500')))).toBe('TRAILING_BYTES')
    expect(codeOf(() => decodeMesh(bytes('0402')))).toBe('INVALID_FIELD')
    expect(codeOf(() => decodeMesh(bytes(`02${'ab'.repeat(32)}0470373a3111`)))).toBe('INVALID_FIELD')
    expect(codeOf(() => decodeMesh(bytes('0621')))).toBe('LIST_TOO_LONG')
    expect(codeOf(() => decodeMesh(bytes('0102c328')))).toBe('INVALID_UTF8')
    expect(codeOf(() => decodeGossip(bytes('02')))).toBe('UNKNOWN_TYPE')
    expect(codeOf(() => decodeGossipControl(bytes('01')))).toBe('UNKNOWN_TYPE')
    expect(codeOf(() => decodeGossipControl(bytes('0400')))).toBe('TRAILING_BYTES')
    // More than 32 keys in one IHAVE is refused from the count byte, before any key is read.
    expect(codeOf(() => decodeGossipControl(bytes('0221')))).toBe('LIST_TOO_LONG')
    expect(codeOf(() => decodeGossipControl(bytes(`0301${'00'.repeat(40)}`)))).toBe('TRUNCATED')
    const tooMany = Array.from({ length: 33 }, () => ({ id: '00'.repeat(16), origin: '00'.repeat(32) }))
    expect(codeOf(() => encodeGossipControl({ type: 'IHAVE', keys: tooMany }))).toBe('LIST_TOO_LONG')
    const gossip = vectors().find((x) => x.type === 'GOSSIP')!.hex
    expect(codeOf(() => decodeGossip(bytes(gossip.slice(0, -2))))).toBe('TRUNCATED')
    expect(codeOf(() => decodeGossip(bytes(`${gossip}00`)))).toBe('TRAILING_BYTES')
    // A text length over 16 KiB is refused before anything is read or allocated.
    const long = `${gossip.slice(0, (1 + 1 + 16 + 32 + 8 + 64) * 2)}4001`
    expect(codeOf(() => decodeGossip(bytes(long)))).toBe('STRING_TOO_LONG')
    expect(codeOf(() => encodeMesh({ type: 'JOIN', addr: 'x'.repeat(256) }))).toBe('STRING_TOO_LONG')
    expect(codeOf(() => encodeMesh({ type: 'FORWARD_JOIN', id: 'zz', addr: '', ttl: 1 }))).toBe(
      'INVALID_FIELD',
    )
  })

  it('every prefix of a valid body is refused, and arbitrary bytes never throw anything but ProtocolError', () => {
    for (const v of vectors()) {
      const body = bytes(v.hex)
      const decode = decoderOf(v.type)
      for (let i = 0; i < body.length; i++) expect(codeOf(() => decode(body.subarray(0, i)))).toBeDefined()
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
        for (const decode of [decodeMesh, decodeGossip, decodeGossipControl]) {
          try {
            decode(junk)
          } catch (err) {
            expect(err).toBeInstanceOf(ProtocolError)
          }
        }
      }),
    )
  })

  it('mesh messages round-trip (property)', () => {
    const id = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(hex)
    const addr = fc.string({ maxLength: 60 })
    const plain = { noNullPrototype: true }
    const entry = fc.record({ id, addr, age: fc.integer({ min: 0, max: 0xffff }) }, plain)
    const msg: fc.Arbitrary<MeshMessage> = fc.oneof(
      fc.record({ type: fc.constant('JOIN' as const), addr }, plain),
      fc.record(
        { type: fc.constant('FORWARD_JOIN' as const), id, addr, ttl: fc.integer({ min: 0, max: 16 }) },
        plain,
      ),
      fc.record({ type: fc.constant('NEIGHBOR' as const), high: fc.boolean(), addr }, plain),
      fc.record({ type: fc.constant('NEIGHBOR_REPLY' as const), accepted: fc.boolean() }, plain),
      fc.record(
        { type: fc.constant('SHUFFLE' as const), entries: fc.array(entry, { maxLength: 32 }) },
        plain,
      ),
    )
    fc.assert(
      fc.property(msg, (m) => {
        expect(decodeMesh(encodeMesh(m))).toEqual(m)
      }),
    )
  })

  it('a gossip text that begins with U+FEFF decodes to the same text, so its signature still verifies', () => {
    const v = vectors().find((x) => x.type === 'GOSSIP')!
    const text = '\uFEFFhello'
    const body = encodeGossip({ ...decodeGossip(bytes(v.hex)), text })
    expect(decodeGossip(body).text).toBe(text)
  })

  it('gossip control messages round-trip (property)', () => {
    const plain = { noNullPrototype: true }
    const key = fc.record(
      {
        id: fc.uint8Array({ minLength: 16, maxLength: 16 }).map(hex),
        origin: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(hex),
      },
      plain,
    )
    const msg: fc.Arbitrary<GossipControl> = fc.oneof(
      fc.record({ type: fc.constant('IHAVE' as const), keys: fc.array(key, { maxLength: 32 }) }, plain),
      key.map((k) => ({ type: 'GRAFT' as const, ...k })),
      fc.constant({ type: 'PRUNE' as const }),
    )
    fc.assert(
      fc.property(msg, (m) => {
        expect(decodeGossipControl(encodeGossipControl(m))).toEqual(m)
      }),
    )
  })
})
