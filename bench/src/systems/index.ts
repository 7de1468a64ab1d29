import type { ScenarioName } from '../scenarios.js'
import type { System, SystemFactory, SystemOptions } from './types.js'

/** The compared systems, in table order. */
export const SYSTEMS = [
  'parley',
  'parley-aesgcm',
  'parley-plaintext',
  'raw',
  'tls',
  'raw-naive',
  'tls-naive',
  'libp2p',
  'secret-stream',
] as const
export type SystemName = (typeof SYSTEMS)[number]

/**
 * Systems that run only some scenarios: Parley with `cipher: 'AESGCM'` in bulk (where a faster cipher
 * would show) and ping-pong (what it costs small records), after (a), which also warms its processes
 * as it does the default's before their bulk; raw and TLS with one write per message in (a) alone, the
 * only scenario where that differs from the coalescing framer (a bulk frame or a ping goes out alone
 * either way).
 */
export const SYSTEM_SCENARIOS: Partial<Record<SystemName, readonly ScenarioName[]>> = {
  'parley-aesgcm': ['oneway', 'bulk', 'pingpong'],
  'raw-naive': ['oneway'],
  'tls-naive': ['oneway'],
}

/** True when `system` runs `scenario` (see {@link SYSTEM_SCENARIOS}). */
export function runsScenario(system: SystemName, scenario: ScenarioName): boolean {
  return SYSTEM_SCENARIOS[system]?.includes(scenario) ?? true
}

/** Names as the table shows them. */
export const SYSTEM_LABELS: Record<SystemName, string> = {
  parley: 'Parley (Noise, acked)',
  'parley-aesgcm': "Parley (Noise, acked), cipher: 'AESGCM'",
  'parley-plaintext': 'Parley plaintext (acked)',
  raw: 'raw node:net + framer',
  tls: 'TLS 1.3 (node:tls) + framer',
  'raw-naive': 'raw node:net, one write per message',
  'tls-naive': 'TLS 1.3, one write per message',
  libp2p: 'js-libp2p (TCP+Noise+Yamux)',
  'secret-stream': '@hyperswarm/secret-stream',
}

export function isSystemName(name: string): name is SystemName {
  return (SYSTEMS as readonly string[]).includes(name)
}

/** Imports only the named system's module, so no other library loads in that process. */
export async function systemFactory(name: SystemName): Promise<SystemFactory> {
  switch (name) {
    case 'parley':
      return (await import('./parley.js')).createParleySystem
    case 'parley-aesgcm':
      return (await import('./parley.js')).createParleyAesGcmSystem
    case 'parley-plaintext':
      return (await import('./parley.js')).createParleyPlaintextSystem
    case 'raw':
      return (await import('./raw.js')).createRawSystem
    case 'tls':
      return (await import('./tls.js')).createTlsSystem
    case 'raw-naive':
      return (await import('./raw.js')).createRawNaiveSystem
    case 'tls-naive':
      return (await import('./tls.js')).createTlsNaiveSystem
    case 'libp2p':
      return (await import('./libp2p.js')).createLibp2pSystem
    case 'secret-stream':
      return (await import('./secret-stream.js')).createSecretStreamSystem
  }
}

export async function loadSystem(name: SystemName, options: SystemOptions): Promise<System> {
  return (await systemFactory(name))(options)
}
