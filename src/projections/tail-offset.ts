/**
 * The record that moves dovecot.index's log_file_tail_offset: "everything in
 * the log before this offset is in the mail files". Dovecot's syncing
 * commits end with it, pointing just past itself
 * (log_append_sync_offset_if_needed); the index writer appends it
 * (TransactionLog's `syncTail`), and a new Maildir/mbox log starts with it.
 */
import { encodeTransaction } from "../log/encode-file.js";
import { LOG_HEADER_SIZE, type LogRecord } from "../log/types.js";
import { TAIL_OFFSET_FIELD_OFFSET } from "./base-header.js";

/** An EXTERNAL header update setting log_file_tail_offset to `tailOffset`. */
export function tailOffsetUpdate(tailOffset: number): LogRecord {
  const data = new Uint8Array(4);
  new DataView(data.buffer).setUint32(0, tailOffset, true);
  return { type: "header-update", external: true, sync: false, patches: [{ offset: TAIL_OFFSET_FIELD_OFFSET, data }] };
}

/**
 * A new log's initial records (each written as its own unframed
 * transaction after the header) followed by the tail update that points
 * past all of them.
 */
export function withInitialTail(records: readonly LogRecord[]): LogRecord[] {
  let end = LOG_HEADER_SIZE;
  for (const r of records) end += encodeTransaction([r], false).length;
  end += encodeTransaction([tailOffsetUpdate(0)], false).length;
  return [...records, tailOffsetUpdate(end)];
}
