#!/usr/bin/env node
// `pnpm soak`: the long soak. 20 peer processes over real TCP on 127.0.0.1, 1,000 acknowledged
// messages each, half of all traffic to one long-lived observer whose heap after GC is compared
// between the end of the warm-up (its dedup window already full) and the end.
//
//   pnpm soak [-- --processes 20 --messages 1000 --window 32 --seed 123 --json]
//
// Exits 1 if any send was not acknowledged, anything was lost or delivered twice, or the observer's
// heap grew by more than MAX_GROWTH.
import { parseArgs } from 'node:util'
import { runSoak } from './soak.mjs'

const MAX_GROWTH = 2 * 1_048_576

const { values } = parseArgs({
  options: {
    processes: { type: 'string', default: '20' },
    messages: { type: 'string', default: '1000' },
    window: { type: 'string', default: '32' },
    seed: { type: 'string' },
    timeout: { type: 'string', default: '300000' },
    json: { type: 'boolean', default: false },
  },
})
const json = values.json
const result = await runSoak({
  processes: Number(values.processes),
  messages: Number(values.messages),
  window: Number(values.window),
  warmupShare: 0.5,
  timeoutMs: Number(values.timeout),
  ...(values.seed !== undefined ? { seed: Number(values.seed) } : {}),
  log: json ? undefined : (line) => console.log(`  ${line}`),
})
const [m1, m2] = result.observer.messagesAtCheckpoints
const [h1, h2] = result.observer.heapUsedAtCheckpoints
const growth = h2 - h1
const problems = [
  result.acked !== result.sent &&
    `${result.sent - result.acked} sends not acknowledged: ${JSON.stringify(result.failed)}`,
  result.received !== result.acked && `${result.acked} acknowledged but ${result.received} delivered`,
  result.duplicates > 0 && `${result.duplicates} duplicate deliveries`,
  result.disconnects > 0 && `${result.disconnects} unexpected disconnects`,
  result.minConnected !== result.processes - 1 &&
    `a process ended with ${result.minConnected} peers, not ${result.processes - 1}`,
  growth > MAX_GROWTH && `the observer's heap grew by ${mib(growth)} (limit ${mib(MAX_GROWTH)})`,
].filter(Boolean)
if (json) {
  console.log(JSON.stringify({ ...result, heapGrowth: growth, problems }, null, 2))
} else {
  console.log(
    [
      `soak (seed ${result.seed}): ${result.processes} processes × ${result.messagesPerProcess} messages = ${result.sent} sent, ${result.acked} acked, ${result.received} delivered, ${result.duplicates} duplicates`,
      `  ${result.sendSeconds.toFixed(2)} s sending (${Math.round(result.sent / result.sendSeconds)} msg/s), ${result.seconds.toFixed(2)} s in all`,
      `  observer heap after GC: ${mib(h1)} at ${m1} messages → ${mib(h2)} at ${m2} messages (${growth >= 0 ? '+' : ''}${mib(growth)}, ${Math.round(growth / (m2 - m1))} B/message)`,
      problems.length === 0 ? 'soak passed' : `soak FAILED:\n  ${problems.join('\n  ')}`,
    ].join('\n'),
  )
}
process.exitCode = problems.length === 0 ? 0 : 1

function mib(bytes) {
  return `${(bytes / 1_048_576).toFixed(2)} MiB`
}
