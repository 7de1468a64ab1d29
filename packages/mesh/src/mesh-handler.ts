import type { Channel, PeerError, ServiceHandler } from '@parley/core'
import { TokenBucket } from '@parley/core'
import { decodeMesh, encodeMesh, type MeshMessage } from './codec.js'
import {
  FORWARD_JOIN_BURST,
  FORWARD_JOIN_RATE,
  WALK_LANDING_BURST,
  WALK_LANDING_RATE,
} from './mesh-options.js'

/** @internal What a session's handler reports to the membership service (implemented by `Mesh`). */
export interface MeshHandlerOwner {
  onMessage(handler: MeshHandler, msg: MeshMessage): void
  handlerResumed(handler: MeshHandler): void
  handlerClosed(handler: MeshHandler, error: PeerError): void
}

/** The mesh's view of one session. */
export class MeshHandler implements ServiceHandler {
  /** SHUFFLEs this peer may make us answer: a burst, then one every two seconds. */
  readonly shuffles = new TokenBucket(0.5, 4)
  /** FORWARD_JOINs of this neighbour we act on; past the budget they are ignored (see mesh-options). */
  readonly forwardJoins = new TokenBucket(FORWARD_JOIN_RATE, FORWARD_JOIN_BURST)
  /** Of those, walks that may end here in a request (see WALK_LANDING_RATE). */
  readonly landings = new TokenBucket(WALK_LANDING_RATE, WALK_LANDING_BURST)
  /** Whether this session's JOIN was walked through the overlay (once per link of the session). */
  walked = false
  /** The reply to the NEIGHBOR we sent this neighbour when its session resumed is still expected (free). */
  confirmDue = false

  constructor(
    readonly mesh: MeshHandlerOwner,
    readonly channel: Channel,
  ) {}

  onFrame(body: Uint8Array): void {
    this.mesh.onMessage(this, decodeMesh(body))
  }

  send(msg: MeshMessage): void {
    if (!this.channel.online) return
    this.channel.sendBytes(encodeMesh(msg))
  }

  /** The session came back on a new link after a loss (we dialed it): it may become a neighbour again. */
  onResume(): void {
    // A new link: a peer cut off from the overlay may rejoin through this session.
    this.walked = false
    this.mesh.handlerResumed(this)
  }

  onClose(error: PeerError): void {
    this.mesh.handlerClosed(this, error)
  }
}
