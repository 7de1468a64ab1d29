import type { ScenarioName, ScenarioParams } from './scenarios.js'

/** Payload of the bulk scenario: 64 KiB-ish, inside Parley's 65,535-byte text limit. */
export const BULK_PAYLOAD = 65_000
const MiB = 1024 * 1024

/**
 * The counts: full and `--quick`. Caps bound each job's loops; the slowest system must fit
 * comfortably (js-libp2p does ≈ 20 k msg/s here, so 1 M one-way messages take ≈ 50 s).
 */
export function planFor(quick: boolean): Record<ScenarioName, ScenarioParams> {
  const oneway = quick ? 200_000 : 1_000_000
  const bulk = Math.ceil((quick ? 256 * MiB : 1024 * MiB) / BULK_PAYLOAD)
  return {
    oneway: { count: oneway, size: 64, timeCapMs: quick ? 30_000 : 120_000, warmup: oneway / 10 },
    bulk: {
      count: bulk,
      size: BULK_PAYLOAD,
      timeCapMs: quick ? 30_000 : 90_000,
      warmup: Math.floor(bulk / 10),
    },
    pingpong: { count: 10_000, size: 64, timeCapMs: 30_000, warmup: 500 },
    // A connection's first round trips in fresh processes, as a chat starts: the cold range.
    pingcold: { count: 2_000, size: 64, timeCapMs: 30_000, warmup: 200 },
    setup: { count: 200, size: 64, timeCapMs: 30_000 },
    memory: { count: 500, size: 64, timeCapMs: 30_000 },
  }
}

/** Tiny counts for the smoke test: every code path, no meaningful timing. */
export const SMOKE_PLAN: Record<ScenarioName, ScenarioParams> = {
  oneway: { count: 300, size: 64, timeCapMs: 10_000, warmup: 30 },
  bulk: { count: 8, size: BULK_PAYLOAD, timeCapMs: 10_000, warmup: 1 },
  pingpong: { count: 20, size: 64, timeCapMs: 10_000, warmup: 2 },
  pingcold: { count: 20, size: 64, timeCapMs: 10_000, warmup: 2 },
  setup: { count: 3, size: 64, timeCapMs: 10_000 },
  memory: { count: 3, size: 64, timeCapMs: 10_000 },
}
