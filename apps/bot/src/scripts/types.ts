/** Where a step came from, for error messages: `steps[2]` and its line in the file (when known). */
export interface StepOrigin {
  /** `steps[2]` */
  readonly path: string
  readonly line?: number
}

/** `start: { name, host, port }` — listen. Only as the first step; without it the runner starts with defaults. */
export interface StartStep extends StepOrigin {
  readonly kind: 'start'
  readonly name?: string
  readonly host?: string
  readonly port?: number
}

/** `connect: <address>` or `connect: { address, timeout }`. */
export interface ConnectStep extends StepOrigin {
  readonly kind: 'connect'
  readonly address: string
  readonly timeout?: number
}

/** What a `wait` step waits for. */
export type WaitCondition =
  /** A peer with this name is connected. */
  | { readonly type: 'peer'; readonly name: string }
  /** At least this many peers are connected. */
  | { readonly type: 'peers'; readonly count: number }
  /** A message containing `text`, or matching `regex`, optionally from the peer named `from`. */
  | { readonly type: 'message'; readonly text?: string; readonly regex?: string; readonly from?: string }
  /** Just time. */
  | { readonly type: 'duration'; readonly ms: number }

/** `wait: { peer | peers | message | regex | ms, from?, timeout? }`. */
export interface WaitStep extends StepOrigin {
  readonly kind: 'wait'
  readonly until: WaitCondition
  readonly timeout?: number
}

/** `send: { to, text, timeout? }`: fails the script when not acknowledged. */
export interface SendStep extends StepOrigin {
  readonly kind: 'send'
  readonly to: string
  readonly text: string
  readonly timeout?: number
}

/** `broadcast: <text>` or `broadcast: { text, timeout? }`: failures are counted, never fatal. */
export interface BroadcastStep extends StepOrigin {
  readonly kind: 'broadcast'
  readonly text: string
  readonly timeout?: number
}

/** `peers` / `peers: { query?, print? }`: print the peer list, or ask a peer whom it knows. */
export interface PeersStep extends StepOrigin {
  readonly kind: 'peers'
  readonly query?: string
  readonly print: boolean
  readonly timeout?: number
}

/** `connect-all` / `connect-all: { timeout? }`: connect to every known peer (query first). */
export interface ConnectAllStep extends StepOrigin {
  readonly kind: 'connect-all'
  readonly timeout?: number
}

/** `assert: { peers?, names?, messages?, message? | regex?, from? }`: every given check must hold. */
export interface AssertStep extends StepOrigin {
  readonly kind: 'assert'
  /** Exactly this many peers connected. */
  readonly peers?: number
  /** Each of these names is connected. */
  readonly names?: readonly string[]
  /** At least this many messages received so far. */
  readonly messages?: number
  /** Some message received so far contains this text. */
  readonly message?: string
  readonly regex?: string
  readonly from?: string
}

/** `offer: { to, file, name?, timeout? }`: offer a file; passes once the receiver verified and saved it. */
export interface OfferStep extends StepOrigin {
  readonly kind: 'offer'
  readonly to: string
  /** Path of the file to offer (relative: to the folder the bot runs in). */
  readonly file: string
  /** The name to offer it under. @default the file's base name */
  readonly name?: string
  readonly timeout?: number
}

/**
 * `wait-file` / `wait-file: { name?, from?, timeout? }`: accept the oldest file offer not taken yet that
 * matches (offered name, sender's name or id), and wait until it is saved and verified.
 */
export interface WaitFileStep extends StepOrigin {
  readonly kind: 'wait-file'
  readonly name?: string
  readonly from?: string
  readonly timeout?: number
}

/** `quit`: stop the peer gracefully and end the script successfully. */
export interface QuitStep extends StepOrigin {
  readonly kind: 'quit'
}

export type Step =
  | StartStep
  | ConnectStep
  | WaitStep
  | SendStep
  | BroadcastStep
  | PeersStep
  | ConnectAllStep
  | AssertStep
  | OfferStep
  | WaitFileStep
  | QuitStep

export type StepKind = Step['kind']

/** A validated script. */
export interface Script {
  /** File name used in messages (as the user gave it), or `script`. */
  readonly source: string
  readonly name?: string
  /** Default variables; `--var` and per-bot variables override them. */
  readonly vars: Readonly<Record<string, string>>
  /** Timeout of every step that has none, in ms. @default 10_000 */
  readonly timeout: number
  readonly steps: readonly Step[]
}
