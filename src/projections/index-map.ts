/**
 * The index map projection in one import: the fold, the read API and the
 * dovecot.index codec. Checkpoint file I/O is separate
 * (./checkpoint-file.js) so that importing this module never touches disk.
 */
export { applyEntry, applyTransaction, replay, enterLogFile, markBackendSynced, withLogModseq } from "./apply.js";
export { emptyIndexMap, type IndexMapState, type ExtensionInfo, type CurrentExt, type EmptyIndexMapOptions } from "./state.js";
export { decodeIndexFile, encodeIndexFile } from "./index-file.js";
export {
  getHeader,
  messageCount,
  position,
  recordAt,
  lookupUid,
  uidAt,
  seqOfUid,
  seqRangeOfUids,
  keywordNames,
  keywordsAt,
  modseqAt,
  extensions,
  extension,
  extensionHeader,
  highestModseq,
  type MessageRecord,
} from "./read.js";
export { IndexHeaderFlag, type IndexHeader, type IndexBaseHeader } from "./base-header.js";
export { layoutRecord } from "./ext-layout.js";
export { keywordsRecordSize } from "./apply-keywords.js";
