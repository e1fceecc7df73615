/**
 * Recognising a copy, for sdbox: Dovecot copies an sdbox message into
 * another mailbox of the storage with a hard link of its u.N file (the
 * file holds no UID, and flags live in the index). MailboxTransaction.copyTo
 * reads the source and appends its bytes, so readMessage() remembers which
 * file each returned body buffer came from (keyed by the buffer object,
 * weakly); a save handed that very buffer with the same GUID and received
 * time links the file instead of writing it again.
 *
 * The link count then also tells a killed copy's leftover from a killed
 * save's: see SdboxMailboxBackend.adoptLeftovers.
 */

/** The u.N file a body buffer was read from. */
export interface LinkSource {
  readonly path: string;
  /** What the file's metadata says (parsed only when a save asks). */
  readonly guid: string | undefined;
  readonly receivedTime: number | undefined;
}

const sources = new WeakMap<Uint8Array, LinkSource>();

/** Records that `body` (a buffer readMessage returned) is the message stored in `source.path`. */
export function rememberLinkSource(body: Uint8Array, source: LinkSource): void {
  sources.set(body, source);
}

/** @returns the file `body` was read from, when it is a buffer readMessage returned. */
export function linkSourceOf(body: Uint8Array): LinkSource | undefined {
  return sources.get(body);
}
