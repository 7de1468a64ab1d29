/**
 * A self-signed ECDSA P-256 certificate for `localhost` / 127.0.0.1, made at bench start with
 * node:crypto alone: no openssl binary, no dependency. The DER is built by hand (X.509 v3, RFC 5280):
 *
 * ```
 * Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
 * tbsCertificate ::= SEQUENCE { [0] version(v3), serial, signature alg, issuer, validity,
 *                               subject, subjectPublicKeyInfo, [3] extensions(subjectAltName) }
 * ```
 */
import { generateKeyPairSync, randomBytes, sign, X509Certificate } from 'node:crypto'

function der(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts)
  const n = body.length
  let length: Buffer
  if (n < 0x80) length = Buffer.from([n])
  else if (n < 0x100) length = Buffer.from([0x81, n])
  else length = Buffer.from([0x82, n >> 8, n & 0xff])
  return Buffer.concat([Buffer.from([tag]), length, body])
}

const sequence = (...parts: Buffer[]) => der(0x30, ...parts)

function integer(bytes: Buffer): Buffer {
  // DER integers are signed: a leading 1 bit needs a zero byte in front to stay positive.
  return der(0x02, (bytes[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes)
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number)
  const out = [a! * 40 + b!]
  for (const n of rest) {
    const base128 = [n & 0x7f]
    for (let v = n >>> 7; v > 0; v >>>= 7) base128.unshift((v & 0x7f) | 0x80)
    out.push(...base128)
  }
  return der(0x06, Buffer.from(out))
}

function utcTime(date: Date): Buffer {
  const iso = date.toISOString() // 2026-01-02T03:04:05.678Z -> 260102030405Z
  const text = `${iso.slice(2, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`
  return der(0x17, Buffer.from(text, 'ascii'))
}

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2'
const COMMON_NAME = '2.5.4.3'
const SUBJECT_ALT_NAME = '2.5.29.17'

/** PEM key and certificate for a TLS server on 127.0.0.1 (name `localhost`), valid for a day. */
export function selfSignedCertificate(): { key: string; cert: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const name = sequence(der(0x31, sequence(oid(COMMON_NAME), der(0x0c, Buffer.from('localhost')))))
  const now = Date.now()
  const serial = randomBytes(16)
  // Positive and minimal in DER: first byte 0x40…0x7f (a 0x00 first byte would be illegal padding).
  serial[0] = (serial[0]! & 0x3f) | 0x40
  const altNames = sequence(
    der(0x82, Buffer.from('localhost')), // dNSName
    der(0x87, Buffer.from([127, 0, 0, 1])), // iPAddress
  )
  const tbs = sequence(
    der(0xa0, integer(Buffer.from([2]))), // version v3
    integer(serial),
    sequence(oid(ECDSA_WITH_SHA256)),
    name,
    sequence(utcTime(new Date(now - 60_000)), utcTime(new Date(now + 86_400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    der(0xa3, sequence(sequence(oid(SUBJECT_ALT_NAME), der(0x04, altNames)))),
  )
  const signature = sign('sha256', tbs, privateKey) // DER-encoded ECDSA signature
  const certificate = sequence(
    tbs,
    sequence(oid(ECDSA_WITH_SHA256)),
    der(0x03, Buffer.from([0]), signature), // BIT STRING, no unused bits
  )
  const cert = `-----BEGIN CERTIFICATE-----\n${certificate
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .trimEnd()}\n-----END CERTIFICATE-----\n`
  // Parse it back: a malformed certificate fails here, at bench start, not inside a TLS handshake.
  if (!new X509Certificate(cert).checkIssued(new X509Certificate(cert))) {
    throw new Error('the generated certificate does not verify against itself')
  }
  return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, cert }
}
