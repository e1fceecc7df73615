/**
 * Recognising a copy. MailboxTransaction.copyTo() copies by reading the
 * source (messageInfo + readMessage) and appending the bytes to the target,
 * and the driver interface has no copy hook. Dovecot's mdbox copy writes no
 * data: the new mailbox record gets the same map_uid and the map refcount
 * goes +1. To do the same, readMessage() remembers which stored message each
 * returned body buffer came from (keyed by the buffer object itself, weakly);
 * a save handed that very buffer, with the same GUID and received time,
 * becomes a refcount +1 instead of a second copy of the bytes.
 *
 * Identity, not content: a caller that builds its own buffer with equal
 * bytes gets an ordinary save, which is always correct.
 */

/** The stored message a body buffer was read from. */
export interface CopySource {
  /** The map's uid_validity when it was read: map uids of another map mean nothing. */
  readonly mapUidValidity: number;
  readonly mapUid: number;
  readonly guid: string;
  readonly receivedTime: number | undefined;
  /** The storage root, so that buffers never cross storages. */
  readonly root: string;
}

const sources = new WeakMap<Uint8Array, CopySource>();

/** Records that `body` (a buffer object readMessage returned, its own per call) holds the message `source`. */
export function rememberCopySource(body: Uint8Array, source: CopySource): void {
  sources.set(body, source);
}

/** @returns the source of `body` when it is a buffer readMessage returned, else undefined. */
export function copySourceOf(body: Uint8Array): CopySource | undefined {
  return sources.get(body);
}
