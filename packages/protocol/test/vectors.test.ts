import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  decodeMessage,
  encodeMessage,
  FrameDecoder,
  frameMessage,
  type Message,
  ProtocolErrorCode,
  splitChannel,
} from '../src/index.js'
import { allTypes, expectProtocolError, fromHex, hexOf } from './fixtures.js'

// Golden vectors live in docs/PROTOCOL.md ("Test vectors"): fenced blocks whose info string is the
// kind, a JSON first line, then hex lines where whitespace is ignored and `#` starts a comment.

const KINDS = ['vector-body', 'vector-frame', 'invalid-body', 'invalid-frame'] as const
type Kind = (typeof KINDS)[number]
interface Vector {
  kind: Kind
  json: unknown
  hex: string
  /** 1-based line of the opening fence, for test names. */
  line: number
}

function parseVectors(doc: string): Vector[] {
  const vectors: Vector[] = []
  const lines = doc.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const info = lines[i]!.match(/^```(.*)$/)?.[1]?.trim()
    if (info === undefined) continue
    const kind = info.split(/\s+/)[0]!
    // A vector whose fence is misspelled or carries more must fail here, not be skipped unchecked.
    if (/^(vector|invalid)\b/.test(kind) && (!KINDS.includes(kind as Kind) || info !== kind))
      throw new Error(`PROTOCOL.md:${i + 1}: unknown vector fence "${info}" (kinds: ${KINDS.join(', ')})`)
    if (!KINDS.includes(kind as Kind)) {
      // Skip the block, so a line inside it that starts with ``` is not read as a fence.
      for (i++; i < lines.length && !lines[i]!.startsWith('```'); i++);
      continue
    }
    const start = i
    const body: string[] = []
    for (i++; i < lines.length && !lines[i]!.startsWith('```'); i++) body.push(lines[i]!)
    const [first = '', ...rest] = body
    const hex = rest.map((l) => l.replace(/#.*$/, '').replace(/\s+/g, '')).join('')
    if (!/^([0-9a-f]{2})+$/.test(hex)) throw new Error(`PROTOCOL.md:${start + 1}: malformed hex "${hex}"`)
    vectors.push({ kind: kind as Kind, json: JSON.parse(first), hex, line: start + 1 })
  }
  return vectors
}

const doc = readFileSync(new URL('../../../docs/PROTOCOL.md', import.meta.url), 'utf8')
const vectors = parseVectors(doc)
/** A `vector-frame` names the channel the message travels on. */
interface FrameJson {
  channel: number
  message: Message
}

const ofKind = (kind: Kind) =>
  vectors.filter((v) => v.kind === kind).map((v) => [`line ${v.line}`, v] as const)

describe('golden vectors in docs/PROTOCOL.md', () => {
  it('covers every message type, framing, and every error code', () => {
    const bodyTypes = new Set(ofKind('vector-body').map(([, v]) => (v.json as Message).type))
    expect([...bodyTypes].sort()).toEqual([...allTypes].sort())
    // Framing on the control channel and on a service channel.
    const channels = ofKind('vector-frame').map(([, v]) => (v.json as FrameJson).channel)
    expect(channels).toContain(0)
    expect(channels.some((c) => c > 0)).toBe(true)
    const codes = new Set(vectors.filter((v) => v.kind.startsWith('invalid')).map((v) => v.json))
    expect([...codes].sort()).toEqual(Object.values(ProtocolErrorCode).sort())
  })

  it.each(ofKind('vector-body'))('body vector at %s encodes and decodes both ways', (_, v) => {
    expect(hexOf(encodeMessage(v.json as Message))).toBe(v.hex)
    expect(decodeMessage(fromHex(v.hex))).toEqual(v.json)
  })

  it.each(ofKind('vector-frame'))('frame vector at %s encodes and decodes both ways', (_, v) => {
    const { channel, message } = v.json as FrameJson
    expect(Object.keys(v.json as object).sort()).toEqual(['channel', 'message'])
    expect(hexOf(frameMessage(message, { channel }))).toBe(v.hex)
    const decoder = new FrameDecoder()
    const bodies = decoder.push(fromHex(v.hex))
    decoder.end()
    expect(bodies).toHaveLength(1)
    const split = splitChannel(bodies[0]!)
    expect(split.channel).toBe(channel)
    expect(decodeMessage(split.message)).toEqual(message)
  })

  it.each(ofKind('invalid-body'))('invalid body at %s is rejected with its code', (_, v) => {
    expectProtocolError(() => decodeMessage(fromHex(v.hex)), v.json as ProtocolErrorCode)
  })

  it.each(ofKind('invalid-frame'))('invalid frame at %s is rejected with its code', (_, v) => {
    // By the frame decoder, or by splitChannel for a frame it passes (the channel byte is framing).
    const frames = (): void => {
      for (const body of new FrameDecoder().push(fromHex(v.hex))) splitChannel(body)
    }
    expectProtocolError(frames, v.json as ProtocolErrorCode)
  })
})
