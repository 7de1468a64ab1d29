/**
 * @parley/protocol runs anywhere JavaScript runs: esbuild bundles the built package for a browser
 * (through its `exports` map, as a web app's bundler would), and the bundle runs in a realm that has
 * only what every JavaScript runtime with Web APIs has (no Buffer, process, require or setImmediate),
 * where it frames, parses and decodes messages byte for byte as in Node.
 */
import { createRequire } from 'node:module'
import { runInNewContext } from 'node:vm'
import { frameMessage, type Message } from '@parley/protocol'
import { build } from 'esbuild'
import { beforeAll, describe, expect, it } from 'vitest'

const require = createRequire(import.meta.url)
let bundle = ''

beforeAll(async () => {
  const result = await build({
    entryPoints: [require.resolve('@parley/protocol').replace(/cjs[/\\]index\.js$/, 'esm/index.js')],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    globalName: 'parley',
    write: false,
    logLevel: 'silent',
  })
  bundle = result.outputFiles[0]!.text
})

/** Runs `code` with the bundle loaded, in a fresh realm holding only the globals listed. */
function runInBrowserLikeRealm(code: string): unknown {
  const realm = {
    TextEncoder,
    TextDecoder,
    queueMicrotask,
    result: undefined as unknown,
  }
  runInNewContext(`${bundle}\n${code}`, realm, { timeout: 10_000 })
  return realm.result
}

const text: Message = {
  type: 'TEXT',
  stream: '0011223344556677',
  seq: 42,
  sentAt: 1_700_000_000_000,
  text: 'héllo 👋 \uFEFF from a browser',
}
const hello: Message = {
  type: 'HELLO',
  version: 3,
  peerId: 'ab'.repeat(32),
  name: 'alice',
  listenAddrs: ['127.0.0.1:4000'],
  capabilities: ['chat'],
}

describe('a browser bundle of @parley/protocol', () => {
  it('imports nothing from Node', () => {
    // Node's Buffer, isAscii and setImmediate are only feature-detected fast paths (the realm below has none).
    expect(bundle).not.toMatch(/\brequire\(|\bimport\(|node:|from ["']/)
  })

  it('has no Node globals in the realm it is tested in', () => {
    expect(runInBrowserLikeRealm('result = [typeof Buffer, typeof process, typeof require]')).toEqual([
      'undefined',
      'undefined',
      'undefined',
    ])
  })

  it('frames messages with the same bytes as in Node and decodes them back', () => {
    const messages = [text, hello]
    const out = runInBrowserLikeRealm(`
      const messages = ${JSON.stringify(messages)}
      const frames = messages.map((m, i) => parley.frameMessage(m, { channel: i }))
      // Fed one byte at a time through the decoder, as a WebSocket might chunk them.
      const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0))
      let at = 0
      for (const f of frames) { all.set(f, at); at += f.length }
      const decoder = new parley.FrameDecoder()
      const decoded = []
      for (let i = 0; i < all.length; i++) {
        for (const body of decoder.push(all.subarray(i, i + 1))) {
          const { channel, message } = parley.splitChannel(body)
          decoded.push({ channel, message: parley.decodeMessage(message) })
        }
      }
      result = { frames: frames.map((f) => Array.from(f)), decoded: JSON.stringify(decoded),
        lengths: messages.map((m) => parley.encodedLength(m)), utf8: parley.utf8Length(messages[0].text) }
    `) as { frames: number[][]; decoded: string; lengths: number[]; utf8: number }

    expect(out.frames).toEqual(messages.map((m, i) => Array.from(frameMessage(m, { channel: i }))))
    expect(JSON.parse(out.decoded)).toEqual(messages.map((message, channel) => ({ channel, message })))
    expect(out.utf8).toBe(Buffer.byteLength((text as { text: string }).text))
  })

  it('refuses malformed UTF-8 and lone surrogates with the same error codes', () => {
    const out = runInBrowserLikeRealm(`
      const codeOf = (fn) => { try { fn(); return 'none' } catch (err) { return err.code } }
      result = [
        // TEXT whose 1-byte text is 0xff.
        codeOf(() => parley.decodeMessage(new Uint8Array([0x10, ...new Array(8).fill(1), 0,0,0,0,0,0,0,1, 0,0,0,0,0,0,0,0, 0,1, 0xff]))),
        codeOf(() => parley.encodeMessage({ type: 'GOODBYE', reason: 'a\\uD800b' })),
      ]
    `)
    expect(out).toEqual(['INVALID_UTF8', 'INVALID_UTF8'])
  })

  it('the FrameWriter coalesces and flushes without setImmediate', async () => {
    const out = runInBrowserLikeRealm(`
      const chunks = []
      const writer = new parley.FrameWriter((chunk) => { chunks.push(Array.from(chunk)) })
      writer.write({ type: 'PING', nonce: 1 })
      writer.write({ type: 'PONG', nonce: 2 }, 3)
      result = chunks
    `) as number[][]
    // Flushed on a microtask of the realm: nothing yet, then one chunk holding both frames.
    expect(out).toEqual([])
    await Promise.resolve()
    expect(out).toEqual([
      [
        ...frameMessage({ type: 'PING', nonce: 1 }),
        ...frameMessage({ type: 'PONG', nonce: 2 }, { channel: 3 }),
      ],
    ])
  })
})
