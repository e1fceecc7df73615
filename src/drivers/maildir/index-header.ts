/**
 * The `maildir` index extension header (index-file.md §6; struct
 * maildir_index_header, 9 × u32 LE): when new/ and cur/ were last scanned,
 * their mtimes then, and the dovecot-uidlist stamp the index matches.
 *
 *     0 new_check_time  4 new_mtime  8 new_mtime_nsecs
 *    12 cur_check_time 16 cur_mtime 20 cur_mtime_nsecs
 *    24 uidlist_mtime  28 uidlist_mtime_nsecs  32 uidlist_size
 *
 * Dovecot's quick check (maildir-sync.c) rescans a directory only when its
 * mtime (seconds and nanoseconds) differs from the header, or when the
 * directory changed within MAILDIR_SYNC_SECS (1 s) of the last scan
 * (`check_time <= mtime + 1`): a second change within the same clock tick
 * would not move the mtime, so such a scan is repeated once the check time
 * is more than a second in the past. A zero new_mtime means "never scanned".
 * Because the header lives in the index, a scan by Dovecot spares the
 * engine its scan, and the other way round.
 */
import { EXT_ID_BY_NAME, EXT_INTRO_FLAG_NO_SHRINK, type LogRecord } from "../../log/types.js";
import { extension, extensionHeader } from "../../projections/read.js";
import type { IndexMapState } from "../../projections/state.js";

export const MAILDIR_EXT_NAME = "maildir";
export const MAILDIR_HDR_SIZE = 36;
/** Dovecot's MAILDIR_SYNC_SECS. */
export const MAILDIR_SYNC_SECS = 1;

export interface MaildirIndexHeader {
  readonly newCheckTime: number;
  readonly newMtime: number;
  readonly newMtimeNsecs: number;
  readonly curCheckTime: number;
  readonly curMtime: number;
  readonly curMtimeNsecs: number;
  readonly uidlistMtime: number;
  readonly uidlistMtimeNsecs: number;
  readonly uidlistSize: number;
}

const FIELDS = [
  "newCheckTime", "newMtime", "newMtimeNsecs", "curCheckTime", "curMtime", "curMtimeNsecs", "uidlistMtime", "uidlistMtimeNsecs", "uidlistSize",
] as const satisfies ReadonlyArray<keyof MaildirIndexHeader>;

export const EMPTY_MAILDIR_HEADER: MaildirIndexHeader = Object.freeze(Object.fromEntries(FIELDS.map((f) => [f, 0])) as unknown as MaildirIndexHeader);

/** @returns the header in `bytes` (shorter data reads as zeros, as Dovecot's memcpy of min size). */
export function decodeMaildirHeader(bytes: Uint8Array): MaildirIndexHeader {
  const padded = new Uint8Array(MAILDIR_HDR_SIZE);
  padded.set(bytes.subarray(0, MAILDIR_HDR_SIZE));
  const view = new DataView(padded.buffer);
  return Object.fromEntries(FIELDS.map((f, i) => [f, view.getUint32(i * 4, true)])) as unknown as MaildirIndexHeader;
}

export function encodeMaildirHeader(hdr: MaildirIndexHeader): Uint8Array {
  const out = new Uint8Array(MAILDIR_HDR_SIZE);
  const view = new DataView(out.buffer);
  FIELDS.forEach((f, i) => view.setUint32(i * 4, hdr[f] >>> 0, true));
  return out;
}

/** @returns the state's `maildir` header, or all zeros when the extension is absent. */
export function maildirHeaderOf(state: IndexMapState): MaildirIndexHeader {
  const ext = extension(state, MAILDIR_EXT_NAME);
  return ext ? decodeMaildirHeader(extensionHeader(ext)) : EMPTY_MAILDIR_HEADER;
}

/** A directory's (or file's) mtime as the header stores it. */
export interface FileStamp {
  readonly mtime: number;
  readonly mtimeNsecs: number;
}

/** @returns the mtime of a bigint stat, split as struct stat's st_mtim. */
export function stampOf(st: { mtimeNs: bigint }): FileStamp {
  return { mtime: Number(st.mtimeNs / 1_000_000_000n), mtimeNsecs: Number(st.mtimeNs % 1_000_000_000n) };
}

function delayedRefresh(checkTime: number, mtime: number, nowSecs: number): boolean {
  return checkTime <= mtime + MAILDIR_SYNC_SECS && checkTime < nowSecs - MAILDIR_SYNC_SECS;
}

/**
 * Dovecot's quick check: which directories need a scan.
 * @returns `newChanged`/`curChanged`; both when the header was never written.
 */
export function maildirDirsChanged(hdr: MaildirIndexHeader, newDir: FileStamp, curDir: FileStamp, nowSecs: number): { newChanged: boolean; curChanged: boolean } {
  if (hdr.newMtime === 0) return { newChanged: true, curChanged: true };
  return {
    newChanged: delayedRefresh(hdr.newCheckTime, hdr.newMtime, nowSecs) || newDir.mtime !== hdr.newMtime || newDir.mtimeNsecs !== hdr.newMtimeNsecs,
    curChanged: delayedRefresh(hdr.curCheckTime, hdr.curMtime, nowSecs) || curDir.mtime !== hdr.curMtime || curDir.mtimeNsecs !== hdr.curMtimeNsecs,
  };
}

/** Dovecot's maildir_index_header_has_changed(): whether a new header is worth a log record. */
export function maildirHeaderChanged(a: MaildirIndexHeader, b: MaildirIndexHeader): boolean {
  if (FIELDS.some((f) => f !== "newCheckTime" && f !== "curCheckTime" && a[f] !== b[f])) return true;
  const dirty = (h: MaildirIndexHeader, which: "new" | "cur") =>
    which === "new" ? h.newCheckTime <= h.newMtime + MAILDIR_SYNC_SECS : h.curCheckTime <= h.curMtime + MAILDIR_SYNC_SECS;
  return dirty(a, "new") !== dirty(b, "new") || dirty(a, "cur") !== dirty(b, "cur");
}

/**
 * The records that write `hdr` (an intro selecting the extension by name,
 * creating it when absent, then the header bytes), EXTERNAL as in Dovecot's
 * syncing transactions.
 */
export function maildirHeaderRecords(state: IndexMapState, hdr: MaildirIndexHeader): LogRecord[] {
  const ext = extension(state, MAILDIR_EXT_NAME);
  return [
    {
      type: "ext-intro", external: true, sync: false,
      intros: [{ extId: EXT_ID_BY_NAME, resetId: ext?.resetId ?? 0, hdrSize: MAILDIR_HDR_SIZE, recordSize: 0, recordAlign: 0, flags: EXT_INTRO_FLAG_NO_SHRINK, name: MAILDIR_EXT_NAME }],
    },
    { type: "ext-hdr", external: true, sync: false, patches: [{ offset: 0, data: encodeMaildirHeader(hdr) }] },
  ];
}
