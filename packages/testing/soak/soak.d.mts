/** Options of {@link runSoak}. */
export interface SoakOptions {
  /** Peer processes, each a full Parley peer over TCP on 127.0.0.1. @default 20 */
  processes?: number
  /** Messages each process sends (and has acknowledged). @default 500 */
  messages?: number
  /** Sends each process keeps in flight at once. @default 32 */
  window?: number
  /** Padding per message text. @default 64 */
  textBytes?: number
  /** Share of the messages sent before the first heap checkpoint. @default 0.2 */
  warmupShare?: number
  /** Seed of the traffic plan. @default random */
  seed?: number
  /** The whole run, processes included, must finish within this. @default 120_000 */
  timeoutMs?: number
  /** Progress lines. @default silent */
  log?: (line: string) => void
}

export interface SoakResult {
  seed: number
  processes: number
  messagesPerProcess: number
  sent: number
  acked: number
  /** Failed sends by PeerError code: must be empty. */
  failed: Record<string, number>
  /** Messages handed to applications, all processes together: must equal `acked`. */
  received: number
  /** Deliveries of a message already delivered (or not from the soak): must be 0. */
  duplicates: number
  /** `peer:disconnect` events seen: must be 0 (nobody leaves before the end). */
  disconnects: number
  /** Fewest peers any process was connected to at the end: `processes - 1` in the full mesh. */
  minConnected: number
  seconds: number
  sendSeconds: number
  /** Process 0, the long-lived peer half of all traffic goes to. */
  observer: {
    /** Messages it had sent + received at each checkpoint (after the warm-up, at the end). */
    messagesAtCheckpoints: [number, number]
    /** Its heapUsed after a full GC at each checkpoint. */
    heapUsedAtCheckpoints: [number, number]
  }
}

/**
 * Forks the peer processes, wires a full mesh, sends a warm-up then the rest, and reports.
 * @throws Error when a process fails or exits early, or the run exceeds `timeoutMs`
 */
export function runSoak(options?: SoakOptions): Promise<SoakResult>
