/**
 * Parley file transfer: offer, accept, verified chunked transfer that resumes, from several sources.
 *
 * ```ts
 * import { createPeer, tcpTransport } from '@parley/core'
 * import { createFileService } from '@parley/files'
 *
 * const files = createFileService({ downloads: './downloads', dataDir: './.parley/files' })
 * const peer = createPeer({ transport: tcpTransport(), services: [files] })
 * files.on('offer', async (offer) => {
 *   const download = await offer.accept()            // or offer.decline(); unanswered, it expires
 *   download.on('progress', (p) => console.log(`${p.bytes}/${p.size}`))
 *   console.log('saved at', (await download.finished).path)
 * })
 * const transfer = await files.offer(bobId, './photo.jpg')
 * await transfer.finished                             // bob verified and saved it
 * ```
 */
export { untilAborted } from './abort.js'
export * from './codec.js'
export type {
  CorruptEvent,
  CorruptReason,
  DownloadEvents,
  DownloadResult,
  DownloadStatus,
  DropReason,
} from './download.js'
export { Download } from './download.js'
export * from './errors.js'
export type { HashedFile } from './hash-tree.js'
export { chooseChunkSize, DEFAULT_CHUNK_SIZE, hashFile, leafHash, rootHash, treeRoot } from './hash-tree.js'
export { type AcceptOptions, IncomingOffer, type OfferStatus } from './offer.js'
export { type OutgoingStatus, OutgoingTransfer, type OutgoingTransferEvents } from './outgoing.js'
export { insideDir, numberedName, PART_SUFFIX, printable, sanitizeName } from './sanitize.js'
export * from './service.js'
export type { PeerRef, Progress } from './wire.js'
