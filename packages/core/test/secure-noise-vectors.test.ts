import { describe, expect, it } from 'vitest'
import { HandshakeState, PROTOCOL_NAME, protocolName, type TransportCiphers } from '../src/secure/noise.js'
import type { NoiseCipher } from '../src/secure/noise-cipher-state.js'
import { keyPairFromPrivateKey } from '../src/secure/noise-crypto.js'
import {
  aesGcmPskVectors,
  aesGcmVectors,
  type NoiseVector,
  noisePskVectors,
  noiseVectors,
} from './fixtures/noise-vectors.js'

const hex = (s: string) => Buffer.from(s, 'hex')
const cipherOf = (vector: NoiseVector): NoiseCipher =>
  vector.protocolName.endsWith('_AESGCM_SHA256') ? 'AESGCM' : 'ChaChaPoly'

type VectorPsk = { init: Buffer[]; resp: Buffer[]; positions: number[] }

/** One side of a published vector's handshake, with the vector's keys, prologue and cipher. */
function party(vector: NoiseVector, initiator: boolean, psk?: VectorPsk): HandshakeState {
  return new HandshakeState({
    initiator,
    prologue: hex(initiator ? vector.initPrologue : vector.respPrologue),
    staticKeyPair: keyPairFromPrivateKey(hex(initiator ? vector.initStatic : vector.respStatic)),
    ephemeralKeyPair: keyPairFromPrivateKey(hex(initiator ? vector.initEphemeral : vector.respEphemeral)),
    ...(psk ? { psk: { keys: initiator ? psk.init : psk.resp, positions: psk.positions } } : {}),
    cipher: cipherOf(vector),
  })
}

/** Replays a published vector on both sides: every handshake and transport message, byte for byte. */
function replay(vector: NoiseVector, psk?: VectorPsk): void {
  const initiator = party(vector, true, psk)
  const responder = party(vector, false, psk)
  let initCiphers: TransportCiphers | undefined
  let respCiphers: TransportCiphers | undefined
  vector.messages.forEach((message, i) => {
    const fromInitiator = i % 2 === 0
    const payload = hex(message.payload)
    let ciphertext: Buffer
    let received: Buffer
    if (!initiator.isComplete) {
      // Handshake phase: the writer must produce the published bytes, the reader recover the payload.
      const [writer, reader] = fromInitiator ? [initiator, responder] : [responder, initiator]
      ciphertext = writer.writeMessage(payload)
      expect(ciphertext.toString('hex'), `handshake message ${i}`).toBe(message.ciphertext)
      received = reader.readMessage(ciphertext)
    } else {
      initCiphers ??= initiator.split()
      respCiphers ??= responder.split()
      const [sender, receiver] = fromInitiator
        ? [initCiphers.send, respCiphers.receive]
        : [respCiphers.send, initCiphers.receive]
      ciphertext = sender.encryptWithAd(Buffer.alloc(0), payload)
      expect(ciphertext.toString('hex'), `transport message ${i}`).toBe(message.ciphertext)
      received = receiver.decryptWithAd(Buffer.alloc(0), ciphertext)
    }
    expect(received.toString('hex'), `payload ${i}`).toBe(message.payload)
  })
  expect(initiator.isComplete && responder.isComplete).toBe(true)
  expect(initiator.handshakeHash).toEqual(responder.handshakeHash)
  expect(initiator.remoteStaticPublicKey).toEqual(keyPairFromPrivateKey(hex(vector.respStatic)).publicKey)
  expect(responder.remoteStaticPublicKey).toEqual(keyPairFromPrivateKey(hex(vector.initStatic)).publicKey)
}

/**
 * The transport fast path (encryptInto) yields the published bytes, as EncryptWithAd does: at nonce 0
 * and at nonce 1, where the nonce's byte order (little-endian for ChaChaPoly, big-endian for AESGCM)
 * shows.
 */
function fastPathMatches(vector: NoiseVector): void {
  const i = party(vector, true)
  const r = party(vector, false)
  const [m0, m1, m2] = vector.messages.map((m) => hex(m.payload))
  r.readMessage(i.writeMessage(m0!))
  i.readMessage(r.writeMessage(m1!))
  r.readMessage(i.writeMessage(m2!))
  const initiatorSend = i.split().send
  const responderSend = r.split().send
  // Messages 3, 4, 5 alternate responder, initiator, responder: 3 and 4 use nonce 0, 5 nonce 1 (not
  // every vector file has a message 5; cacophony's do).
  const senders = [responderSend, initiatorSend, responderSend]
  const transport = vector.messages.slice(3, 6)
  const sealed = transport.map((message, k) => {
    const payload = hex(message.payload)
    const out = Buffer.alloc(payload.length + 16 + 3)
    expect(senders[k]!.encryptInto(payload, out, 3)).toBe(out.length)
    return out.subarray(3).toString('hex')
  })
  expect(sealed).toEqual(transport.map((m) => m.ciphertext))
}

describe.each(noiseVectors)('Noise_XX_25519_ChaChaPoly_SHA256 vector from $source', (vector) => {
  it('names the protocol we implement', () => {
    expect(vector.protocolName).toBe(PROTOCOL_NAME)
  })

  it('reproduces every handshake and transport message byte for byte, on both sides', () => {
    replay(vector)
  })

  it('the transport fast path (encryptInto) yields the same bytes as EncryptWithAd', () => {
    fastPathMatches(vector)
  })
})

describe('CipherState', () => {
  it('does not advance the nonce on an authentication failure, and rejects reuse', () => {
    const i = new HandshakeState({
      initiator: true,
      staticKeyPair: keyPairFromPrivateKey(Buffer.alloc(32, 1)),
    })
    const r = new HandshakeState({
      initiator: false,
      staticKeyPair: keyPairFromPrivateKey(Buffer.alloc(32, 2)),
    })
    r.readMessage(i.writeMessage(Buffer.alloc(0)))
    i.readMessage(r.writeMessage(Buffer.alloc(0)))
    r.readMessage(i.writeMessage(Buffer.alloc(0)))
    const send = i.split().send
    const receive = r.split().receive
    const a = send.encryptWithAd(Buffer.alloc(0), Buffer.from('first'))
    const b = send.encryptWithAd(Buffer.alloc(0), Buffer.from('second'))
    const bad = Buffer.from(a)
    bad[0]! ^= 1
    expect(() => receive.decryptWithAd(Buffer.alloc(0), bad)).toThrowError(
      expect.objectContaining({ code: 'INTEGRITY' }),
    )
    expect(receive.nonce).toBe(0)
    expect(receive.decryptWithAd(Buffer.alloc(0), a).toString()).toBe('first')
    // A replay of `a` is checked against nonce 1 and fails.
    expect(() => receive.decryptWithAd(Buffer.alloc(0), a)).toThrowError(
      expect.objectContaining({ code: 'INTEGRITY' }),
    )
    expect(receive.decryptWithAd(Buffer.alloc(0), b).toString()).toBe('second')
  })

  it('a prologue mismatch fails the handshake at the first MAC', () => {
    const i = new HandshakeState({
      initiator: true,
      prologue: Buffer.from('a'),
      staticKeyPair: keyPairFromPrivateKey(Buffer.alloc(32, 1)),
    })
    const r = new HandshakeState({
      initiator: false,
      prologue: Buffer.from('b'),
      staticKeyPair: keyPairFromPrivateKey(Buffer.alloc(32, 2)),
    })
    r.readMessage(i.writeMessage(Buffer.alloc(0)))
    expect(() => i.readMessage(r.writeMessage(Buffer.alloc(0)))).toThrowError(
      expect.objectContaining({ code: 'HANDSHAKE_FAILED' }),
    )
  })

  it('rejects a low-order remote ephemeral key', () => {
    const r = new HandshakeState({
      initiator: false,
      staticKeyPair: keyPairFromPrivateKey(Buffer.alloc(32, 2)),
    })
    // The all-zero point: every DH with it yields zero, which OpenSSL refuses.
    r.readMessage(Buffer.alloc(32))
    expect(() => r.writeMessage(Buffer.alloc(0))).toThrow()
  })
})

describe.each(noisePskVectors)('$protocolName vector from $source', (vector) => {
  it('names the protocol with its psk modifiers', () => {
    expect(protocolName(vector.pskPositions)).toBe(vector.protocolName)
  })

  it('reproduces every handshake and transport message byte for byte, on both sides', () => {
    replay(vector, {
      init: vector.initPsks.map(hex),
      resp: vector.respPsks.map(hex),
      positions: vector.pskPositions,
    })
  })

  it('a responder with another pre-shared key rejects the first message it can authenticate', () => {
    const other = Buffer.alloc(32, 7)
    const initiator = new HandshakeState({
      initiator: true,
      prologue: hex(vector.initPrologue),
      staticKeyPair: keyPairFromPrivateKey(hex(vector.initStatic)),
      psk: { keys: vector.initPsks.map(hex), positions: vector.pskPositions },
    })
    const responder = new HandshakeState({
      initiator: false,
      prologue: hex(vector.respPrologue),
      staticKeyPair: keyPairFromPrivateKey(hex(vector.respStatic)),
      psk: { keys: vector.respPsks.map(() => other), positions: vector.pskPositions },
    })
    const first = initiator.writeMessage(Buffer.alloc(0))
    if (vector.pskPositions.includes(0)) {
      expect(() => responder.readMessage(first)).toThrow(/rejected/)
      return
    }
    responder.readMessage(first)
    initiator.readMessage(responder.writeMessage(Buffer.alloc(0)))
    expect(() => responder.readMessage(initiator.writeMessage(Buffer.alloc(0)))).toThrow(/rejected/)
  })
})

describe.each(aesGcmVectors)('Noise_XX_25519_AESGCM_SHA256 vector from $source', (vector) => {
  it('names the protocol with its cipher function', () => {
    expect(protocolName([], 'AESGCM')).toBe(vector.protocolName)
  })

  it('reproduces every handshake and transport message byte for byte, on both sides', () => {
    replay(vector)
  })

  it('the transport fast path (encryptInto) yields the same bytes as EncryptWithAd', () => {
    fastPathMatches(vector)
  })
})

describe.each(aesGcmPskVectors)('$protocolName vector from $source', (vector) => {
  it('names the protocol with its psk modifiers and cipher function', () => {
    expect(protocolName(vector.pskPositions, 'AESGCM')).toBe(vector.protocolName)
  })

  it('reproduces every handshake and transport message byte for byte, on both sides', () => {
    replay(vector, {
      init: vector.initPsks.map(hex),
      resp: vector.respPsks.map(hex),
      positions: vector.pskPositions,
    })
  })
})
