import * as fs from "node:fs";
import { parseLogBytes, type ParsedLogFile } from "../log/file.js";
import { decodeIndexFile } from "../projections/index-file.js";
import { INDEX_MAJOR_VERSION } from "../projections/base-header.js";
import { LOG_MAJOR_VERSION } from "../log/types.js";
import { InvalidArgumentError, MailstoreError } from "../shared/errors.js";
import type { IndexMapState } from "../projections/state.js";

/** A Dovecot index file as `mailstore dump` shows it: a log record by record, or an index as the state it holds. */
export type DovecotFile = { kind: "log"; log: ParsedLogFile } | { kind: "index"; state: IndexMapState };

/**
 * Reads a log (dovecot.index.log, .log.2, dovecot.map.index.log) or an index
 * (dovecot.index, dovecot.map.index, dovecot.list.index), told apart by the
 * first byte: a log's major version is 1, an index's 7.
 * @throws LogCorruptedError or IndexCorruptedError as parseLogBytes and the index decoder do; fs errors.
 */
export function readDovecotFile(file: string): DovecotFile {
  const first = firstByteOf(file);
  if (first !== INDEX_MAJOR_VERSION && first !== LOG_MAJOR_VERSION) {
    throw new InvalidArgumentError(`Can't autodetect file type (neither a log nor an index: first byte ${first ?? "missing, empty file"})`, { path: file });
  }
  // A regular file whose first byte is a known version: read whole, as doveadm dump does.
  const bytes = fs.readFileSync(file);
  if (first === INDEX_MAJOR_VERSION) {
    return { kind: "index", state: decodeIndexFile(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file) };
  }
  return { kind: "log", log: parseLogBytes(bytes, file) };
}

/**
 * @returns the first byte of `file` (undefined when it is empty), read
 *   without reading the rest: a device (/dev/zero) or a FIFO is refused
 *   before anything is read, a huge file of another kind after one byte.
 * @throws MailstoreError NOT_FOUND for a missing file (for a missing
 *   dovecot.index next to its log: no checkpoint yet), InvalidArgumentError
 *   for what is not a regular file.
 */
function firstByteOf(file: string): number | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    const log = `${file}.log`;
    const why = fs.existsSync(log) ? `no checkpoint has been written yet; the mailbox's state is in its log: dump ${log}` : "no such file";
    throw new MailstoreError("NOT_FOUND", why, { path: file });
  }
  if (!st.isFile()) throw new InvalidArgumentError("not a regular file (Can't autodetect file type)", { path: file });
  const fd = fs.openSync(file, "r");
  try {
    const one = Buffer.alloc(1);
    return fs.readSync(fd, one, 0, 1, 0) === 1 ? one[0] : undefined;
  } finally {
    fs.closeSync(fd);
  }
}
