/**
 * The opt-in bridge to the legacy plain-text protocol (`--legacy`): a transport decorator that
 * tells legacy connections from Parley ones by their first byte, and a bridge that speaks the
 * legacy format. See docs/PROTOCOL.md, "Legacy bridge".
 */
export {
  createLegacyBridge,
  type LegacyBridge,
  type LegacyBridgeEvents,
  type LegacyBridgeInit,
  type LegacyBridgeStatus,
  type LegacyDrop,
  type LegacyLeaveReason,
  type LegacyMessage,
  type LegacyPeerInfo,
  type LegacySendOptions,
  type LegacySendOutcome,
} from './bridge.js'
export * from './errors.js'
export * from './format.js'
export * from './transport.js'
