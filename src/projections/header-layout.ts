/**
 * Sizes of dovecot.index's header area (index-file.md §2, §5): the base
 * header, then one entry per extension, each 8-byte aligned.
 */
import type { IndexHeader } from "./base-header.js";
import type { ExtensionInfo, IndexMapState } from "./state.js";

/** sizeof(struct mail_index_ext_header): hdr_size, reset_id, record_offset/size/align, name_size. */
export const EXT_HEADER_FIXED_SIZE = 16;

export function align8(n: number): number {
  return (n + 7) & ~7;
}

/** Bytes from an extension entry's start to its header data (mail_index_map_ext_hdr_offset). */
export function extDataOffset(nameSize: number): number {
  return align8(EXT_HEADER_FIXED_SIZE + nameSize);
}

/** header_size: the base header, 8-byte padding, then every extension entry. */
export function headerSizeOf(baseHeaderSize: number, exts: readonly ExtensionInfo[]): number {
  let size = align8(baseHeaderSize);
  for (const e of exts) size += extDataOffset(e.name.length) + align8(e.hdrSize);
  return size;
}

/** The base header with its derived fields (header_size, record_size, messages_count). */
export function fullHeader(state: {
  readonly header: IndexMapState["header"];
  readonly extensions: IndexMapState["extensions"];
  readonly records: { readonly recordSize: number; readonly count: number };
}): IndexHeader {
  return {
    ...state.header,
    headerSize: headerSizeOf(state.header.baseHeaderSize, state.extensions),
    recordSize: state.records.recordSize,
    messagesCount: state.records.count,
  };
}
