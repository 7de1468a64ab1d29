/** The chat view's slash commands: parsing and Tab completion, no I/O (unit-tested on their own). */

/** Every command with its one-line help, in the order `/help` lists them. */
export const CHAT_COMMANDS = [
  {
    name: 'to',
    args: '<name> [text]',
    help: 'talk to one peer (a name, fingerprint or host:port), and send text if given; /to * = everyone',
  },
  { name: 'r', args: '[text]', help: 'reply: talk to whoever wrote last (and send text, if given)' },
  { name: 'peers', args: '', help: 'connected and known peers (asks the connected ones whom they know)' },
  { name: 'connect', args: '<host:port>', help: 'connect to a peer' },
  { name: 'all', args: '', help: 'connect to every active peer known and not yet connected' },
  { name: 'show', args: '[n]', help: 'a folded long message in full (the last one without n)' },
  {
    name: 'send-file',
    args: '<peer> <path>',
    help: 'offer a file to a peer (name, fingerprint or id prefix)',
  },
  { name: 'files', args: '', help: 'file offers waiting and transfers running, with their ids' },
  { name: 'accept', args: '[id]', help: 'accept a file offer (the only one waiting, without id)' },
  { name: 'decline', args: '[id]', help: 'decline a file offer' },
  { name: 'cancel', args: '<id>', help: 'stop a file transfer, sending or receiving (/files lists the ids)' },
  {
    name: 'trust',
    args: '[address]',
    help: 'key changes waiting for your decision (--full: whole keys); /trust <address> accepts one',
  },
  { name: 'menu', args: '', help: 'the numbered menu (1 send, 2 peers, 3 connect to all, 0 quit)' },
  { name: 'help', args: '', help: 'this list' },
  { name: 'quit', args: '', help: 'say goodbye to every peer and leave (also Ctrl+C, Ctrl+D)' },
] as const

export type ChatCommandName = (typeof CHAT_COMMANDS)[number]['name']

/** What one input line asks for. */
export type ChatInput =
  | { kind: 'say'; text: string }
  | { kind: 'command'; name: ChatCommandName; arg: string }
  | { kind: 'unknown'; name: string }
  | { kind: 'empty' }

const ALIASES: Readonly<Record<string, ChatCommandName>> = {
  exit: 'quit',
  q: 'quit',
  msg: 'to',
  query: 'to',
  reply: 'r',
  h: 'help',
  '?': 'help',
  connect_all: 'all',
  // The line commands' names (README, --no-interactive), typed with a slash by habit. Without `send`
  // here, `/send bob hi` was the unique prefix of /send-file and tried to send a file called "hi".
  'connect-all': 'all',
  send: 'to',
}

/**
 * Parses one line of the chat view. A line without a leading `/` is a message; `//text` sends
 * `/text`. Commands are case-insensitive; a unique prefix works too (`/pe` = `/peers`).
 */
export function parseChatLine(line: string): ChatInput {
  if (line.trim() === '') return { kind: 'empty' }
  if (!line.startsWith('/')) return { kind: 'say', text: line }
  if (line.startsWith('//')) return { kind: 'say', text: line.slice(1) }
  const m = /^\/(\S*)\s*(.*)$/s.exec(line)
  const word = (m?.[1] ?? '').toLowerCase()
  const arg = (m?.[2] ?? '').trim()
  const name = resolveCommand(word)
  return name === undefined ? { kind: 'unknown', name: word } : { kind: 'command', name, arg }
}

function resolveCommand(word: string): ChatCommandName | undefined {
  const exact = CHAT_COMMANDS.find((c) => c.name === word)?.name ?? ALIASES[word]
  if (exact !== undefined) return exact
  if (word === '') return undefined
  const byPrefix = CHAT_COMMANDS.filter((c) => c.name.startsWith(word))
  return byPrefix.length === 1 ? byPrefix[0]?.name : undefined
}

/** The `/help` text. */
export function chatHelp(): string {
  const width = Math.max(...CHAT_COMMANDS.map((c) => `/${c.name} ${c.args}`.length))
  return [
    'commands (Tab completes commands and peer names):',
    ...CHAT_COMMANDS.map((c) => `  ${`/${c.name} ${c.args}`.padEnd(width)}  ${c.help}`),
    '  a line without / goes to the current conversation (everyone when none is chosen); //text sends /text',
  ].join('\n')
}

/** Commands whose argument is a peer name. */
const TAKES_PEER: ReadonlySet<string> = new Set(['to', 'msg', 'query', 'send', 'send-file'])

/**
 * Tab completion in readline's shape: `[candidates, the fragment they replace]`. Completes the
 * command word, then a peer name after `/to`; a name with spaces is completed whole, in quotes.
 * Candidates are whole words; readline inserts their common prefix.
 */
export function completeChat(line: string, peerNames: readonly string[]): [string[], string] {
  if (!line.startsWith('/') || line.startsWith('//')) return [[], line]
  const space = line.indexOf(' ')
  if (space < 0) {
    const word = line.slice(1).toLowerCase()
    const hits = CHAT_COMMANDS.filter((c) => c.name.startsWith(word)).map(
      (c) => `/${c.name}${c.args === '' ? '' : ' '}`,
    )
    return [hits, line]
  }
  const verb = line.slice(1, space).toLowerCase()
  if (!TAKES_PEER.has(verb)) return [[], line]
  const fragment = line.slice(space + 1).trimStart()
  const quoted = fragment.startsWith('"')
  const lower = (quoted ? fragment.slice(1) : fragment).toLowerCase()
  const names = [...new Set(peerNames)].filter((n) => n.toLowerCase().startsWith(lower)).sort()
  // A space after the name, as after a command: what follows it (text, a path) is the next word. A
  // name with a space in it is quoted, so the text after it is not taken for the rest of the name.
  return [names.map((n) => (quoted || /\s/.test(n) ? `"${n}" ` : `${n} `)), fragment]
}
