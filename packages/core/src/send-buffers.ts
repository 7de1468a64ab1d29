/**
 * Recycled memory for large frames and records on their way to the socket.
 *
 * A 64 KiB record handed to `socket.write` lives until the kernel has taken it, and a freshly
 * allocated one costs page faults on first touch: measured here, sealing 64 KiB into fresh memory
 * took ~70 µs against ~50 µs into recycled memory. So the secure channel takes its large record
 * buffers from here, and the TCP transport, which owns them once sent (see `Connection.send`),
 * gives them back once written. Only buffers that came from {@link takeSendBuffer} are ever
 * recycled; any other bytes pass through untouched. The peer's large frames come from here too: the
 * secure channel gives a frame back as soon as it has sealed it (it owns what it is sent), and on a
 * plaintext connection the frame itself goes to the socket and comes back once written. A buffer that goes elsewhere (the memory
 * transport hands it to the receiver) is simply never given back, and the garbage collector frees it.
 */

/** The largest Noise record on the wire: a u16 length and 65,535 bytes. */
export const SEND_BUFFER_BYTES = 2 + 65_535
/** Buffers kept for reuse, process-wide: 1 MiB at most, whatever the number of connections. */
const MAX_FREE = 16

/**
 * The views handed out by takeSendBuffer and not given back yet, with the memory under each. Keyed
 * by the view object itself, not its memory: a stale view from an earlier loan can never give back
 * memory that was lent again since.
 */
const lent = new WeakMap<Uint8Array, Buffer>()
const free: Buffer[] = []

/**
 * `size` bytes (at most {@link SEND_BUFFER_BYTES}) of recyclable memory, contents undefined. Only
 * this very object is recognised by {@link releaseSendBuffer}, not views made from it.
 * @throws RangeError when `size` is too large
 */
export function takeSendBuffer(size: number): Buffer {
  if (size > SEND_BUFFER_BYTES) throw new RangeError(`a send buffer holds at most ${SEND_BUFFER_BYTES} bytes`)
  const whole = free.pop() ?? Buffer.allocUnsafeSlow(SEND_BUFFER_BYTES)
  const view = whole.subarray(0, size)
  lent.set(view, whole)
  return view
}

/**
 * Memory for one outgoing chunk of `size` bytes: recycled when it fits a send buffer, else fresh.
 * The peer's frame writer takes its large frames from here; whoever ends up owning the chunk gives
 * it back with {@link releaseSendBuffer} once it has read it (the secure channel, once sealed; the
 * TCP transport, once written), or just drops it.
 */
export function takeChunkBuffer(size: number): Buffer {
  return size <= SEND_BUFFER_BYTES ? takeSendBuffer(size) : Buffer.allocUnsafe(size)
}

/** True when `bytes` is a buffer from {@link takeSendBuffer} that was not given back yet. */
export function isSendBuffer(bytes: Uint8Array): boolean {
  return lent.has(bytes)
}

/**
 * Gives the memory of `bytes` back for reuse. Only the final owner may call it, once nothing reads
 * the bytes any more (the TCP transport: once the socket has written them). No-op for bytes that
 * did not come from {@link takeSendBuffer}, and for a buffer already given back.
 */
export function releaseSendBuffer(bytes: Uint8Array): void {
  const whole = lent.get(bytes)
  if (whole === undefined) return
  lent.delete(bytes)
  if (free.length < MAX_FREE) free.push(whole)
}
