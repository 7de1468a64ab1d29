#!/usr/bin/env node
// `pnpm sim`: N peers running membership and gossip (docs/MESH.md) in this process on the in-memory
// transport, with churn; progress on stderr, one JSON line of results on stdout.
//
//   pnpm sim -- --peers 1000 --churn 0.1 --broadcasts 5 --seed 1 [--active 6] [--upgrader noise|plaintext] [--time-limit 600]
//
// Exits 1 when a broadcast missed a live peer or a phase did not finish within the time limit.
import { parseArgs } from 'node:util'
import { simulateMesh } from '@parley/mesh'

const USAGE =
  'usage: pnpm sim -- [--peers 1000] [--churn 0] [--broadcasts 5] [--seed 1] [--active 6] [--upgrader noise|plaintext] [--time-limit 600]'

let values
try {
  ;({ values } = parseArgs({
    // pnpm forwards the `--` separator itself: skip it.
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      peers: { type: 'string', default: '1000' },
      churn: { type: 'string', default: '0' },
      broadcasts: { type: 'string', default: '5' },
      seed: { type: 'string', default: '1' },
      active: { type: 'string', default: '6' },
      upgrader: { type: 'string' },
      'time-limit': { type: 'string', default: '600' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }))
} catch (err) {
  // An unknown flag or a missing value: one line and the usage, not a stack trace.
  console.error(`sim: ${err.message.replace(/\. To specify a positional argument.*$/s, '')}\n${USAGE}`)
  process.exit(2)
}
if (values.help) {
  console.log(USAGE)
  process.exit(0)
}

function number(name, value, { integer = false, min = 0 } = {}) {
  const v = Number(value)
  if (!Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
    console.error(
      `--${name} must be ${integer ? 'an integer' : 'a number'} of at least ${min}, got "${value}"`,
    )
    process.exit(2)
  }
  return v
}
if (values.upgrader !== undefined && values.upgrader !== 'noise' && values.upgrader !== 'plaintext') {
  console.error(`--upgrader is noise or plaintext, got "${values.upgrader}"`)
  process.exit(2)
}

try {
  const result = await simulateMesh({
    peers: number('peers', values.peers, { integer: true, min: 2 }),
    churn: number('churn', values.churn),
    broadcasts: number('broadcasts', values.broadcasts, { integer: true }),
    seed: number('seed', values.seed, { integer: true }),
    activeSize: number('active', values.active, { integer: true, min: 1 }),
    timeLimit: number('time-limit', values['time-limit']) * 1000,
    ...(values.upgrader !== undefined ? { upgrader: values.upgrader } : {}),
    onProgress: (line) => console.error(`[sim] ${line}`),
  })
  if (result.upgrader === 'plaintext') {
    console.error('[sim] note: plaintext upgrader (no Noise handshakes) to spare CPU at this size')
  }
  console.log(JSON.stringify(result))
  process.exit(result.completed && result.reach.min === 1 ? 0 : 1)
} catch (err) {
  console.error(`[sim] ${err instanceof Error ? err.message : String(err)}`)
  process.exit(2)
}
