import { explain } from '../errors.js'
import { sanitize } from '../view/format.js'

/** One sentence for a file-transfer failure, and its stable code. */
export function explainFileError(
  err: unknown,
  ctx: { path?: string; peer?: string } = {},
): { code: string; reason: string } {
  const code = (err as { code?: unknown; name?: unknown } | null)?.code
  const isFiles = (err as { name?: unknown } | null)?.name === 'FilesError'
  const peer = ctx.peer === undefined ? 'the peer' : sanitize(ctx.peer)
  const say = (reason: string) => ({ code: String(code), reason })
  if (isFiles) {
    switch (code) {
      case 'NOT_CONNECTED':
        return say(`${peer} is not connected, or does not take files`)
      case 'DECLINED':
        return say(`${peer} declined it`)
      case 'EXPIRED':
        return say('nobody answered the offer in time')
      case 'CANCELLED':
        return say('the transfer was cancelled')
      case 'BUSY':
        return say('too many offers or downloads are waiting; try again when one finishes')
      case 'BAD_FILE':
        // Said after "sending <name> failed:", which names the file already.
        return say(whyBadFile(err as object))
      case 'FILE_CHANGED':
        return say('the file changed on the sender’s disk during the transfer')
      case 'NO_SPACE':
        return say('not enough free space in the download folder')
      case 'NO_SOURCES':
        return say('no peer is left that can send it (gone, too slow, or sent corrupt data)')
      case 'VERIFY_FAILED':
        return say('the file did not match its hash even after fetching it again')
      case 'IO':
        return say(
          `cannot write to the download folder${ctx.path === undefined ? '' : ` ${sanitize(ctx.path)}`}`,
        )
      case 'SERVE_LIMIT':
        return say(`${peer} fetched the file too many times over, so sending it was stopped`)
      case 'ANSWERED':
        return say('that offer was already answered')
      case 'MALFORMED':
        return say(`${peer} broke the file transfer protocol`)
    }
  }
  const e = explain(err, ctx.peer !== undefined ? { target: peer } : {})
  return { code: e.code, reason: e.sentence }
}

/** Why a file cannot be offered, from the files package's reason and the system error under it. */
function whyBadFile(err: { reason?: unknown; cause?: unknown }): string {
  switch (err.reason) {
    case 'missing':
      return 'there is no such file'
    case 'denied':
      return 'permission denied'
    case 'folder':
      return 'it is a folder'
    case 'not-regular':
      return 'it is not a regular file'
    case 'too-large':
      return 'it is too large to share (at most 65,536 chunks)'
  }
  const cause = (err.cause as { code?: unknown } | undefined)?.code
  return typeof cause === 'string' ? `it could not be read (${cause})` : 'it could not be read'
}
