#!/usr/bin/env node
import { runCli } from './app.js'

// The bin entry: real streams, real signals. Everything else lives in runCli so tests can inject.
const code = await runCli(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
})
process.exitCode = code
// Everything is closed by now, so the process ends on its own; if some handle lingers (a socket
// mid-close), do not let it hold the terminal. unref: this timer alone keeps nothing alive.
setTimeout(() => process.exit(code), 1_000).unref()
