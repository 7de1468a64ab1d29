export {
  decodeGossip,
  decodeGossipControl,
  decodeMesh,
  encodeGossip,
  encodeGossipControl,
  encodeMesh,
  type GossipControl,
  type GossipKey,
  type GossipMessage,
  gossipSigningBytes,
  type MeshEntry,
  type MeshMessage,
} from './codec.js'
export {
  createGossip,
  GOSSIP_PROTOCOL,
  Gossip,
  type GossipDelivery,
  type GossipEvents,
  type GossipInit,
  type GossipStats,
} from './gossip.js'
export { createMesh, MESH_PROTOCOL, Mesh } from './membership.js'
export type { MeshHandlerOwner } from './mesh-handler.js'
export { MAX_ACTIVE_SIZE, type MeshEvents, type MeshInit, type MeshStats } from './mesh-options.js'
export { createMeshPeer, type MeshPeer, type MeshPeerInit } from './mesh-peer.js'
export { type Random, seededRandom } from './random.js'
export {
  identityFromSeed,
  type SimulationOptions,
  type SimulationResult,
  simulateMesh,
} from './simulation.js'
