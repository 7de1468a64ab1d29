/**
 * @parley/cli: the Parley terminal peer. The `parley` binary is `dist/main.js`; this module exports
 * the program as a function so tests (and wrappers) can run it with their own streams and transport.
 *
 * ```ts
 * import { runCli } from '@parley/cli'
 * const code = await runCli(['--no-interactive', '--port', '0'], {
 *   stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env,
 * })
 * ```
 */
export { type CliIo, EXIT, runCli, type SignalSource } from './app.js'
export { LiveConsole, type TerminalStream } from './view/live-console.js'
