import * as fs from "node:fs";
import { parseLogBytes, type ParsedLogFile } from "../log/file.js";
import { decodeIndexFile } from "../projections/index-file.js";
import { INDEX_MAJOR_VERSION } from "../projections/base-header.js";
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
  const bytes = fs.readFileSync(file);
  if (bytes[0] === INDEX_MAJOR_VERSION) {
    return { kind: "index", state: decodeIndexFile(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file) };
  }
  return { kind: "log", log: parseLogBytes(bytes, file) };
}
