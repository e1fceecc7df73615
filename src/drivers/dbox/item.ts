/**
 * A `<key char><value>` item: the unit of both the dbox file header line
 * (space separated) and the metadata block (one per line).
 */
export interface DboxItem {
  /** One character; Dovecot's keys are uppercase ASCII letters. */
  readonly key: string;
  /**
   * The value as a byte string: one char per byte (latin1), so any bytes in a
   * file survive decode and encode unchanged. Text that may be UTF-8 (the `B`
   * mailbox name, a `P` POP3 UIDL) is decoded by readDboxMetadata().
   */
  readonly value: string;
}

/** Where a decode error is reported: the file and the file offset of `bytes[0]`. */
export interface DboxSource {
  /** File name for error messages (optional for in-memory buffers). */
  readonly path?: string;
  /** File offset of `bytes[0]` when `bytes` is a window of a larger file (default 0). */
  readonly baseOffset?: number;
}
