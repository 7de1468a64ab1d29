#!/usr/bin/env node
import { handleSignals, runCli } from './cli.js'

// Only flag parsing and process wiring live here; everything else is in the library (cli.ts and below).
const signals = handleSignals(process, (code) => process.exit(code))
const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  signal: signals.signal,
})
signals.dispose()
process.exitCode = code
// Everything was stopped; if a stray handle still holds the loop open, do not hang on it.
setTimeout(() => process.exit(code), 1_000).unref()
