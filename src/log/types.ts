/**
 * The vocabulary of the engine: one discriminated union of log records, named
 * after Dovecot's `MAIL_TRANSACTION_*` types (mail-transaction-log.h). The
 * codec produces it, projections fold it, change streams and `dump --json`
 * show it.
 */

/** A place in the log, exactly as Dovecot's (file_seq, offset). */
export interface LogPosition {
  readonly fileSeq: number;
  readonly offset: number;
}

/** Record type values (the low 28 bits of the record header's type field). */
export const RecordType = {
  EXPUNGE: 0x00000001,
  APPEND: 0x00000002,
  FLAG_UPDATE: 0x00000004,
  HEADER_UPDATE: 0x00000020,
  EXT_INTRO: 0x00000040,
  EXT_RESET: 0x00000080,
  EXT_HDR_UPDATE: 0x00000100,
  EXT_REC_UPDATE: 0x00000200,
  KEYWORD_UPDATE: 0x00000400,
  KEYWORD_RESET: 0x00000800,
  EXT_ATOMIC_INC: 0x00001000,
  EXPUNGE_GUID: 0x00002000,
  MODSEQ_UPDATE: 0x00008000,
  EXT_HDR_UPDATE32: 0x00010000,
  INDEX_DELETED: 0x00020000,
  INDEX_UNDELETED: 0x00040000,
  BOUNDARY: 0x00080000,
  ATTRIBUTE_UPDATE: 0x00100000,
} as const;

/** Must be OR'ed into EXPUNGE and EXPUNGE_GUID; compare masked types for equality. */
export const EXPUNGE_PROT = 0x0000cd90;
export const TYPE_MASK = 0x0fffffff;
/** The change already happened in the backend (mail files). */
export const TYPE_EXTERNAL = 0x10000000;
/** The change came from dsync replication. */
export const TYPE_SYNC = 0x20000000;

/** System flags as stored in an index record's flags byte. */
export const MailFlag = {
  ANSWERED: 0x01,
  FLAGGED: 0x02,
  DELETED: 0x04,
  SEEN: 0x08,
  DRAFT: 0x10,
  /** Storage-private: sdbox/mdbox store it for messages in alternate storage. */
  BACKEND: 0x40,
  /** Flags not yet written to the backend (maildir/mbox). */
  DIRTY: 0x80,
} as const;
/** The IMAP-visible system flag bits. */
export const MAIL_FLAGS_NONRECENT = 0x1f;

/** An inclusive UID range, `uid1 <= uid2`. */
export interface UidRange {
  uid1: number;
  uid2: number;
}

export interface AppendedMessage {
  uid: number;
  /** The flags byte of the new index record (MailFlag bits). */
  flags: number;
}

export interface FlagUpdate {
  uid1: number;
  uid2: number;
  addFlags: number;
  removeFlags: number;
  /** 1 = bump the modseq even if no flag changes. */
  modseqIncFlag: number;
}

/** A byte patch at an offset, used by the header-update record family. */
export interface HeaderPatch {
  offset: number;
  data: Uint8Array;
}

export interface ExtIntro {
  /** Index into the reader's extension list, or EXT_ID_BY_NAME. */
  extId: number;
  resetId: number;
  hdrSize: number;
  recordSize: number;
  recordAlign: number;
  /** 0x01 = NO_SHRINK. */
  flags: number;
  /** Empty when the extension is selected by `extId`. */
  name: string;
}
export const EXT_ID_BY_NAME = 0xffffffff;
export const EXT_INTRO_FLAG_NO_SHRINK = 0x01;

export interface ExtRecUpdate {
  uid: number;
  /** `recordSize` bytes (of the preceding intro). */
  data: Uint8Array;
}

/**
 * EXT_REC_UPDATE entries left where they are in the log's bytes, as a
 * reusing scan hands them to a replay (scan-reuse.ts): entry i is the uid
 * (u32 LE) at `start + i * entrySize`, its data the record_size bytes after.
 * Only valid until the scan's callback returns.
 */
export interface PackedExtRecUpdates {
  bytes: Uint8Array;
  view: DataView;
  start: number;
  count: number;
  entrySize: number;
}

export interface ExtAtomicInc {
  uid: number;
  diff: number;
}

export interface ExpungeGuid {
  uid: number;
  /** 16 bytes; all zero when unknown. */
  guid: Uint8Array;
}

export interface ModseqUpdate {
  /** 0 = only raise the mailbox's highest modseq. */
  uid: number;
  modseq: bigint;
}

export interface AttributeChange {
  /** '+' = set, '-' = unset. */
  op: "+" | "-";
  /** 'p' = private, 's' = shared. */
  scope: "p" | "s";
  key: string;
  timestamp: number;
  /** Present for '+' entries. */
  valueLength?: number;
}

/** Payload of each record type, without the header flags. */
export type LogRecordBody =
  | { type: "expunge"; ranges: UidRange[] }
  | { type: "append"; messages: AppendedMessage[] }
  | { type: "flag-update"; updates: FlagUpdate[] }
  | { type: "header-update"; patches: HeaderPatch[] }
  | { type: "ext-intro"; intros: ExtIntro[] }
  | { type: "ext-reset"; newResetId: number; preserveData: number; legacyShort?: boolean }
  | { type: "ext-hdr"; patches: HeaderPatch[] }
  | { type: "ext-hdr32"; patches: HeaderPatch[] }
  /** `packed` only from a reusing scan, and then `updates` is empty: the entries are read from the log's bytes. */
  | { type: "ext-rec"; recordSize: number; updates: ExtRecUpdate[]; packed?: PackedExtRecUpdates }
  | { type: "keyword-update"; modifyType: "add" | "remove"; name: string; ranges: UidRange[] }
  | { type: "keyword-reset"; ranges: UidRange[] }
  | { type: "ext-atomic-inc"; updates: ExtAtomicInc[] }
  | { type: "expunge-guid"; expunges: ExpungeGuid[] }
  | { type: "modseq-update"; updates: ModseqUpdate[] }
  | { type: "index-deleted" }
  | { type: "index-undeleted" }
  | { type: "boundary"; size: number }
  | { type: "attribute-update"; changes: AttributeChange[] };

export type LogRecordType = LogRecordBody["type"];

/** A record as stored: its body plus the EXTERNAL and SYNC flag bits. */
export type LogRecord = LogRecordBody & {
  /** The change already happened in the backend. */
  external: boolean;
  /** The change came from dsync replication. */
  sync: boolean;
};

/** One decoded record at its place in the log. */
export interface LogEntry {
  /** Where the record's header starts. */
  position: LogPosition;
  /** Total record size in bytes, header included. */
  size: number;
  /** The file's running modseq after this record (transaction-log.md §8). */
  modseq: bigint;
  record: LogRecord;
}

/** One committed transaction: a boundary and what it covers, or a lone record. */
export interface LogTransaction {
  /** Where the first record starts. */
  position: LogPosition;
  /** Position just past the last record. */
  end: LogPosition;
  /** Records without the boundary record itself. */
  entries: LogEntry[];
  /** Running modseq after the transaction. */
  modseq: bigint;
  /** True when every record carries EXTERNAL. */
  external: boolean;
  /** True when the transaction starts with a BOUNDARY record. */
  framed: boolean;
}

/** The 40-byte v1.3 log file header (struct mail_transaction_log_header). */
export interface LogFileHeader {
  majorVersion: number;
  minorVersion: number;
  hdrSize: number;
  indexId: number;
  fileSeq: number;
  prevFileSeq: number;
  prevFileOffset: number;
  createStamp: number;
  initialModseq: bigint;
  compatFlags: number;
}

export const LOG_MAJOR_VERSION = 1;
export const LOG_MINOR_VERSION = 3;
export const LOG_HEADER_SIZE = 40;
export const LOG_HEADER_MIN_SIZE = 24;
export const COMPAT_LITTLE_ENDIAN = 0x01;
