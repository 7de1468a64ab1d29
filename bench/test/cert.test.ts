import { X509Certificate } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { selfSignedCertificate } from '../src/cert.js'

describe('selfSignedCertificate', () => {
  it('is a self-issued certificate for localhost and 127.0.0.1', () => {
    for (let i = 0; i < 50; i++) {
      const cert = new X509Certificate(selfSignedCertificate().cert)
      expect(cert.checkIssued(cert)).toBe(true)
      expect(cert.checkHost('localhost')).toBe('localhost')
      expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1')
    }
  })
})
