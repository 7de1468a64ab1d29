export {
  decodeGossip,
  decodeMesh,
  encodeGossip,
  encodeMesh,
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
export {
  createMesh,
  MAX_ACTIVE_SIZE,
  MESH_PROTOCOL,
  Mesh,
  type MeshEvents,
  type MeshInit,
  type MeshStats,
} from './membership.js'
export { createMeshPeer, type MeshPeer, type MeshPeerInit } from './mesh-peer.js'
export { type Random, seededRandom } from './random.js'
export {
  identityFromSeed,
  type SimulationOptions,
  type SimulationResult,
  simulateMesh,
} from './simulation.js'
