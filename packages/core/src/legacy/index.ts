/**
 * The opt-in bridge to the legacy plain-text protocol (`--legacy`): a transport decorator that
 * tells legacy connections from Parley ones by their first byte, and a bridge that speaks the
 * legacy format. See docs/PROTOCOL.md, "Legacy bridge".
 */
export { createLegacyBridge } from './bridge.js'
export type {
  LegacyBridge,
  LegacyBridgeEvents,
  LegacyBridgeInit,
  LegacyBridgeStatus,
  LegacyDrop,
  LegacyLeaveReason,
  LegacyMessage,
  LegacyPeerInfo,
  LegacySendOptions,
  LegacySendOutcome,
} from './bridge-types.js'
export * from './errors.js'
export * from './format.js'
export * from './transport.js'
