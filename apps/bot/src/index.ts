/**
 * @parley/bot: scripted Parley peers for demos and acceptance tests. Every piece takes its peer or
 * transport from the caller, so tests run it over the in-memory network.
 *
 * ```ts
 * import { memoryNetwork, memoryTransport } from '@parley/core'
 * import { parseScript, runScript, runSwarm } from '@parley/bot'
 *
 * const transport = memoryTransport(memoryNetwork())
 * const summary = await runSwarm({ count: 5, topology: 'ring', transport, behaviour: 'echo', listen: (i) => `bot-${i}:0` })
 * console.log(summary.messages) // { sent: 20, delivered: 20, failed: 0, received: 20 }
 *
 * const script = parseScript('steps:\n  - connect: "{{peer}}"\n  - send: { to: "{{peer}}", text: hi }\n', { source: 'hi.yaml' })
 * const result = await runScript(script, { transport, host: 'me', vars: { peer: 'bot-0:1' } })
 * ```
 *
 * @packageDocumentation
 */

export * from './behaviours/index.js'
export {
  type Bot,
  type BotBroadcastOptions,
  type BotBroadcastResult,
  type BotEvents,
  type BotInit,
  type BotStats,
  createBot,
  Traffic,
} from './bot.js'
export { type CliIO, ExitCode, handleSignals, runCli } from './cli.js'
export { BotError, BotErrorCode, describeError, ScriptValidationError } from './errors.js'
export { loadScript, MAX_SCRIPT_BYTES, type ParseScriptOptions, parseScript } from './scripts/parse.js'
export { type RunScriptOptions, runScript, type ScriptResult } from './scripts/runner.js'
export type * from './scripts/types.js'
export {
  DEFAULT_STEP_TIMEOUT,
  formatPath,
  type Locate,
  MAX_MS,
  MAX_STEPS,
  type ValidateOptions,
  type ValuePath,
  validateScript,
} from './scripts/validate.js'
export {
  formatProcessSummary,
  MAX_PROCESS_SWARM_SIZE,
  MAX_PROCESSES,
  type ProcessSwarmInit,
  type ProcessSwarmSummary,
  runProcessSwarm,
} from './swarm/processes.js'
export {
  type BotSummary,
  formatSummary,
  MAX_SWARM_SIZE,
  runSwarm,
  type Swarm,
  type SwarmEnd,
  type SwarmInit,
  type SwarmSummary,
  startSwarm,
} from './swarm/swarm.js'
export { type Edge, edges, isTopology, seededRandom, TOPOLOGIES, type Topology } from './swarm/topology.js'
export { render, type Vars, variablesIn } from './template.js'
export { delay, type WaitOptions, waitForEvent } from './wait.js'
