/**
 * A worker's CPU profile of its job alone. `node --cpu-prof` profiles the whole process, so about a
 * tenth of a profiled run's samples were Node's bootstrap and module loading; the profiler started
 * through node:inspector once the system is loaded holds the job: its connection, warm-up and
 * measured span. The runner names the file in {@link PROFILE_ENV}.
 */
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'

/** Environment variable through which the runner asks a worker for a profile, and where to write it. */
export const PROFILE_ENV = 'PARLEY_BENCH_CPU_PROFILE'

/** --cpu-prof's default interval, so profiles stay comparable with earlier runs. */
const SAMPLING_INTERVAL_US = 1_000

let session: Session | undefined

/** Starts profiling if the runner asked for it; once per process. */
export async function startJobProfile(): Promise<void> {
  if (process.env[PROFILE_ENV] === undefined || session !== undefined) return
  session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US })
  await session.post('Profiler.start')
}

/** Writes the profile taken since {@link startJobProfile}, if any, as a `.cpuprofile` file. */
export async function writeJobProfile(): Promise<void> {
  const path = process.env[PROFILE_ENV]
  if (path === undefined || session === undefined) return
  const { profile } = await session.post('Profiler.stop')
  session.disconnect()
  session = undefined
  writeFileSync(path, JSON.stringify(profile))
}
