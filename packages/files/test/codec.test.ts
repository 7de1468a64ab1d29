import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { decode, encode, type FilesMessage, Limits, leafHash, MessageType, rootHash } from '../src/index.js'

// Vectors live in docs/FILES.md: fenced blocks whose info string names their kind; the first line is
// JSON, the rest hex with `#` comments.
const doc = readFileSync(new URL('../../../docs/FILES.md', import.meta.url), 'utf8')

function blocks(kind: string): { json: unknown; hex: string }[] {
  const out: { json: unknown; hex: string }[] = []
  const re = new RegExp(`^\`\`\`${kind}\\n([\\s\\S]*?)^\`\`\`$`, 'gm')
  for (const m of doc.matchAll(re)) {
    const [first, ...rest] = m[1]!.split('\n')
    const hex = rest.map((l) => l.replace(/#.*$/, '').replace(/\s+/g, '')).join('')
    if (!/^([0-9a-f]{2})*$/.test(hex)) throw new Error(`FILES.md: malformed hex in a ${kind} block`)
    out.push({ json: JSON.parse(first!), hex })
  }
  return out
}

const BYTE_FIELDS = ['id', 'root', 'hashes', 'data'] as const

function fromJson(j: Record<string, unknown>): FilesMessage {
  const m: Record<string, unknown> = { ...j }
  for (const f of BYTE_FIELDS) if (typeof m[f] === 'string') m[f] = Buffer.from(m[f] as string, 'hex')
  return m as unknown as FilesMessage
}

function toJson(m: FilesMessage): Record<string, unknown> {
  const j: Record<string, unknown> = { ...m }
  for (const f of BYTE_FIELDS)
    if (j[f] instanceof Uint8Array) j[f] = Buffer.from(j[f] as Uint8Array).toString('hex')
  return j
}

describe('message vectors in docs/FILES.md', () => {
  const valid = blocks('vector-files')
  it('has a vector for every message type', () => {
    const types = valid.map((v) => (v.json as { type: string }).type)
    expect(new Set(types)).toEqual(new Set(Object.keys(MessageType)))
  })

  for (const v of valid) {
    const json = v.json as Record<string, unknown>
    it(`${json.type}: encodes to the bytes and decodes back`, () => {
      expect(Buffer.from(encode(fromJson(json))).toString('hex')).toBe(v.hex)
      expect(toJson(decode(Buffer.from(v.hex, 'hex')))).toEqual(json)
    })
  }

  for (const v of blocks('invalid-files')) {
    it(`rejects: ${v.json as string}`, () => {
      expect(() => decode(Buffer.from(v.hex, 'hex'))).toThrow(expect.objectContaining({ code: 'MALFORMED' }))
    })
  }
})

describe('hash tree vectors in docs/FILES.md', () => {
  for (const v of blocks('vector-tree')) {
    const spec = v.json as { chunks: [number, number][]; size: number; chunkSize: number }
    it(`${spec.chunks.length} chunks of ${spec.size} bytes`, () => {
      const leaves = Buffer.concat(spec.chunks.map(([byte, n]) => leafHash(Buffer.alloc(n, byte))))
      const root = rootHash(spec.size, spec.chunkSize, leaves)
      expect(Buffer.concat([leaves, root]).toString('hex')).toBe(v.hex)
    })
  }
})

describe('codec bounds', () => {
  const id = Buffer.alloc(16, 7)

  it('every truncation of every valid message is rejected', () => {
    for (const v of blocks('vector-files')) {
      const bytes = Buffer.from(v.hex, 'hex')
      // A CHUNK ends in data, so a shorter one is a valid CHUNK of less data from 26 bytes on.
      const type = (v.json as { type: string }).type
      const min = type === 'CHUNK' ? 26 : bytes.length
      for (let n = 0; n < min; n++) {
        expect(() => decode(bytes.subarray(0, n)), `${type} cut at ${n}`).toThrow(
          expect.objectContaining({ code: 'MALFORMED' }),
        )
      }
    }
  })

  it('refuses to encode what it would refuse to decode', () => {
    const bad: FilesMessage[] = [
      { type: 'CHUNK', id, index: 0, offset: 0, data: Buffer.alloc(Limits.pieceBytes + 1) },
      { type: 'REQUEST', id, ranges: [] },
      { type: 'OFFER', id, root: Buffer.alloc(32), size: 1, chunkSize: 1000, name: 'x' },
      { type: 'OFFER', id, root: Buffer.alloc(32), size: 1, chunkSize: 32768, name: 'x'.repeat(256) },
      { type: 'ACCEPT', id: Buffer.alloc(15) },
    ]
    for (const m of bad) expect(() => encode(m)).toThrow(expect.objectContaining({ code: 'MALFORMED' }))
  })

  it('a full piece round-trips and its data is a view of the body', () => {
    const data = Buffer.alloc(Limits.pieceBytes, 9)
    const body = encode({ type: 'CHUNK', id, index: 65_535, offset: 16 * 1024 * 1024 - 32768, data })
    expect(body.byteLength).toBe(32_793)
    const m = decode(body)
    expect(m).toMatchObject({ type: 'CHUNK', index: 65_535 })
    expect(Buffer.from((m as { data: Uint8Array }).data).equals(data)).toBe(true)
  })
})
