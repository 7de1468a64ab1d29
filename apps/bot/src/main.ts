#!/usr/bin/env node
import { handleSignals, runCli } from './cli.js'

// Only flag parsing and process wiring live here; everything else is in the library (cli.ts and below).
const signals = handleSignals(process, (code) => process.exit(code))
// A reader that left (`bot … | head`) or a closed terminal: stop as on SIGTERM, goodbyes included,
// instead of the write error ending the process.
const outputGone = () => signals.stop('SIGTERM')
process.stdout.on('error', outputGone)
process.stderr.on('error', outputGone)
const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  signal: signals.signal,
})
signals.dispose()
process.exitCode = code
// Everything was stopped; if a stray handle still holds the loop open, do not hang on it.
setTimeout(() => process.exit(code), 1_000).unref()
