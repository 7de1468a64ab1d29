// `pnpm --filter cli start -- <flags>` (and the bot's): build what is stale, quietly, then run the
// app of the current package (pnpm runs a package's scripts in its folder) in this very process. The
// package script is `exec node ../../scripts/start-app.mjs`, so no shell stays between pnpm and the
// peer: pnpm passes SIGTERM and SIGINT on to its direct child, and that child is the peer.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const app = process.cwd()
const { name } = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'))

/** Runs turbo's build of the app and what it depends on; its output is shown only when it fails. */
function build() {
  return new Promise((resolve) => {
    const child = spawn(
      'turbo',
      [
        'run',
        'build',
        `--filter=${name}...`,
        '--filter=!@parley/testing',
        '--only',
        '--output-logs=errors-only',
      ],
      {
        cwd: root,
        env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let output = ''
    const keep = (chunk) => {
      // Bounded: a failing build's last 64 KiB say what went wrong.
      output = (output + chunk.toString('utf8')).slice(-65_536)
    }
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    // A first build takes a while; say so on a terminal rather than looking stuck.
    const slow = setTimeout(() => {
      if (process.stderr.isTTY) process.stderr.write('building Parley…\r')
    }, 1_500)
    const finish = (ok) => {
      clearTimeout(slow)
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      if (process.stderr.isTTY) process.stderr.write('\x1b[2K\r')
      if (!ok) process.stderr.write(`${output.trimEnd()}\nthe build failed; see above\n`)
      resolve(ok)
    }
    // Stopped while building: stop turbo too (it is our child, not pnpm's), then leave.
    const stop = (signal) => {
      child.kill(signal)
      process.exit(signal === 'SIGINT' ? 130 : 143)
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    child.on('error', (err) => {
      output += `\ncould not run turbo: ${err.message} — run pnpm --reporter=default install and fix what it reports`
      finish(false)
    })
    child.on('exit', (code) => finish(code === 0))
  })
}

if (!(await build())) process.exit(1)

// If pnpm itself is killed outright (SIGKILL, a crash), nothing tells the peer: notice that the
// parent is gone and stop gracefully, so no orphan keeps the port. (process.ppid is read once at
// start in Node 20, so it cannot tell; signal 0 only asks whether the process exists.)
// unref: this timer alone holds nothing open.
const parent = process.ppid
const watch = setInterval(() => {
  try {
    process.kill(parent, 0)
  } catch (err) {
    if (err.code !== 'ESRCH') return
    clearInterval(watch) // once: a second SIGTERM would cut the graceful stop short
    process.kill(process.pid, 'SIGTERM')
  }
}, 1_000)
watch.unref()

// Relative paths the user gives (a script, a file to send, a data dir) mean the folder the command was
// typed in. pnpm runs a package's script in the package's folder and says where it was typed in INIT_CWD.
const { INIT_CWD: typedIn } = process.env
if (typedIn !== undefined && isAbsolute(typedIn) && existsSync(typedIn)) process.chdir(typedIn)

await import(pathToFileURL(join(app, 'dist/main.js')).href)
