/**
 * Parsers for the text printed by Dovecot 2.3.19's `doveadm dump`.
 *
 * Everything below was observed with doveadm 2.3.19.1 (Debian 12) on files
 * written by real Dovecot (sdbox, mdbox incl. storage/dovecot.map.index.log,
 * maildir, mbox, dovecot.list.index.log, rotated .log.2, dsync backups,
 * `mailbox update --min-highest-modseq`, `mailbox metadata set/unset`).
 *
 * ───────────────────────── `doveadm dump -t log <file>` ─────────────────────────
 *
 * Header: eight `key = value` lines (lower-case keys containing spaces):
 *
 *     version = 1.3
 *     hdr size = 40
 *     index id = 1795425878
 *     file seq = 3
 *     prev file = 2/1020              <- "<prev_file_seq>/<prev_file_offset>"
 *     create stamp = 1795425878
 *     initial modseq = 13
 *     compat flags = 1                <- printed in HEX (%x)
 *
 * Then one line per record, followed by 0..n detail lines starting with " - ":
 *
 *     record: offset=<decimal>, type=<name>[ (ext)][ (sync)], size=<decimal total size incl. 8-byte header>[, modseq=<decimal>]
 *
 * `(ext)` = MAIL_TRANSACTION_EXTERNAL (0x10000000), `(sync)` = MAIL_TRANSACTION_SYNC
 * (0x20000000, seen on records written by dsync/`doveadm backup`).  Record type names
 * exactly as printed (note: "ext-hdr" / "ext-rec", not "...-update"):
 *   expunge (0xCD91), expunge-guid (0xED90), append, flag-update, header-update,
 *   ext-intro, ext-reset, ext-hdr (EXT_HDR_UPDATE), ext-hdr32, ext-rec (EXT_REC_UPDATE),
 *   keyword-update, keyword-reset, ext-atomic-inc, modseq-update, index-deleted,
 *   index-undeleted, boundary, attribute-update, and "unknown: <full type in hex>".
 * A record whose size field decodes to 0 prints `size=broken (<raw hex>)` and ends
 * the dump (exit 0).  A truncated record makes doveadm print `Fatal: rec data read()
 * x != y` on stderr, exit 75, and the last stdout line has NO trailing newline.
 *
 * `, modseq=N` is only printed for records that increase the modseq (doveadm
 * 2.3.19 runs Dovecot's real modseq accounting, starting from `initial modseq`;
 * nothing is printed when initial modseq is 0 until an ext-intro named "modseq"):
 *   - append, keyword-update, keyword-reset, attribute-update: always;
 *   - flag-update: yes, EXCEPT when it only touches internal flags without
 *     modseq_inc_flag (e.g. mbox's `(flags +80-0, modseq_inc_flag=0)` "dirty" update,
 *     printed as `type=flag-update (ext), size=20` with no modseq);
 *   - expunge / expunge-guid: only the EXTERNAL ones `(ext)`; expunge requests
 *     (no `(ext)`) never get one;
 *   - modseq-update: only when it raises the highest modseq; the printed value is
 *     then the new highest modseq (e.g. `modseq=100` for `uid=0 modseq=100`).
 *   - never: boundary, header-update, ext-* records.
 *
 * Real sample lines (one per kind of detail line):
 *
 *     record: offset=40, type=ext-intro, size=36
 *      - ext_id = 4294967295
 *      - reset_id = 0
 *      - hdr_size = 24
 *      - record_size = 0
 *      - record_align = 0
 *      - flags = 0
 *      - name_size = 8
 *      - name = 'dbox-hdr'                      (name line absent when name_size = 0)
 *     record: offset=76, type=ext-hdr, size=36
 *      - offset = 0, size = 24: 00000000b3c6f81b5606046bb516000083ecc37500000000
 *     record: offset=184, type=ext-hdr (ext), size=16
 *      - offset = 0, size = 4: 00000000 (dec=0)     ("(dec=N)" only for 4-byte data)
 *     record: offset=112, type=header-update (ext), size=16
 *      - offset = 80, size = 4: 5606046b (dec=1795425878)   (unknown base-header offset)
 *     record: offset=200, type=header-update (ext), size=24
 *      - uid_validity = 1795425878                          (known base-header field)
 *     record: offset=360, type=header-update (ext), size=48
 *      - day_stamp = 1795392000
 *      - offset = 88, size = 32: 0100000000000000000000000000000000000000000000000000000000000000
 *     record: offset=128, type=boundary (ext), size=12
 *      - size=96
 *     record: offset=272, type=ext-reset (ext), size=16
 *      - new_reset_id = 1795425878
 *      - preserve_data = 0
 *     record: offset=300, type=append (ext), size=16, modseq=2
 *      - uids=1,                                   (trailing comma; "1 (flags=2)," if flags != 0)
 *     record: offset=344, type=ext-rec (ext), size=16
 *      - uid=1: 84010000 (dec=388)                 (one line per uid)
 *     record: offset=188, type=ext-rec, size=24
 *      - uid=1: 0100000010000000db000000
 *     record: offset=564, type=flag-update, size=20, modseq=5
 *      - uids=1-1 (flags +a-0, modseq_inc_flag=0)  (add/remove masks in hex; one line per range)
 *     record: offset=584, type=keyword-update, size=28, modseq=6
 *      - modify=0, name=$Label1, uids=1-1,         (modify 0 = add, 1 = remove)
 *     record: offset=760, type=expunge-guid, size=28
 *      - uid=2 (guid 00000000000000000000000000000000)   (one line per uid)
 *     record: offset=868, type=expunge-guid (ext), size=28, modseq=11
 *     record: offset=644, type=ext-atomic-inc, size=16
 *      - uid=1: +1                                  ("-1" for negative)
 *     record: offset=368, type=modseq-update (ext), size=32
 *      - uid=1 modseq=4
 *      - uid=2 modseq=4
 *     record: offset=1604, type=attribute-update, size=28, modseq=101
 *      - add: private/comment : timestamp=2026-11-23 09:26:37 value_len=5
 *     record: offset=1632, type=attribute-update, size=24, modseq=102
 *      - remove: private/comment : timestamp=2026-11-23 09:26:37
 *     record: offset=380, type=append (ext) (sync), size=16, modseq=2
 *     record: offset=1416, type=unknown: 0, size=broken (0)
 *   From doveadm source (not produced in experiments): expunge prints ` - uids=1-1,2-3,`,
 *   keyword-reset ` - uids=1-2, 3-4, ` (comma+space), ext-hdr32 like ext-hdr,
 *   index-deleted / index-undeleted print no detail line.
 *
 * ───────────────────── `doveadm dump -t index <dir | file>` ─────────────────────
 *
 * Opens dovecot.index (or dovecot.map.index / a given index file path) read-only,
 * replays the log(s) on top and prints (a missing dir/index → stderr
 * "Fatal: Couldn't open index <path>", exit 75; a directory holding only
 * dovecot.index.log works; dovecot.list.index must be given as a file path):
 *
 *     -- INDEX: sdbox/mailboxes/INBOX/dbox-Mails//dovecot.index
 *     version .................. = 7.3
 *     base header size ......... = 120
 *     header size .............. = 456
 *     record size .............. = 16
 *     compat flags ............. = 1
 *     index id ................. = 1795425878 (2026-11-23 09:24:38)
 *     flags .................... = 0
 *     uid validity ............. = 1795425878 (2026-11-23 09:24:38)
 *     next uid ................. = 4
 *     messages count ........... = 1
 *     seen messages count ...... = 0
 *     deleted messages count ... = 1
 *     first recent uid ......... = 1
 *     first unseen uid lowwater  = 0
 *     first deleted uid lowwater = 0
 *     log file seq ............. = 3
 *     log file tail offset ..... = 88
 *     log file head offset ..... = 132
 *     log2 rotate time ......... = 1795425878 (2026-11-23 09:24:38)
 *     last temp file scan ...... = 1795425878 (2026-11-23 09:24:38)
 *     day stamp ................ = 1795392000 (2026-11-23 00:00:00)
 *     day first uid[0] ......... = 1           ([0]..[7])
 *     -- Extension 0 --                         (or "no extensions")
 *     name ........ = dbox-hdr
 *     hdr_size .... = 24
 *     reset_id .... = 0
 *     record_offset = 0
 *     record_size . = 0
 *     record_align  = 0
 *     header                                    (decoded known ext headers, or instead:
 *      - rebuild_count . = 0                     "header ........ = <hex>" for unknown ones,
 *      - mailbox_guid .. = b3c6f8...c375         list index adds " - refresh_flag = 0",
 *      - flags ......... = 0x0                   " - 1 : INBOX" lines)
 *     -- Keywords --
 *       0 = $Label1                             ("%3u = name"; index = bit in keywords ext)
 *     <empty line>
 *     -- CACHE: …/dovecot.index.cache            then cache header lines or "cache is unusable",
 *     -- Cache fields --                         and a field table (" 0: flags   bit  4 tmp  date")
 *     <empty line>
 *     -- RECORDS: 1
 *     RECORD: seq=1, uid=1, flags=0x16 (Flagged Deleted Draft)     ("flags=0x00 " + space if none)
 *      - ext 0 keywords  :            (0100)    (" - ext <registered-ext-idx> %-10s: %10u|10 spaces (hex)")
 *      - ext 1 modseq    :         10 (0a00000000000000)
 *      - ext 4 cache     :        580 (44020000)
 *      - ext 2 map       :            (0200000010000000db000000)
 *                        : file_id = 2       (19-space continuation lines for map/mdbox/list/msgs/vsize…)
 *      - cache offset=580 size=48, prev_offset = 388
 *         - guid: b5c6f81b5606046bb516000083ecc375
 *         - flags: (30000000)
 *     <empty line after each record>
 * The "ext N" number in record lines is the index of the *registered* extension,
 * not the "-- Extension N --" number of the map.  Keyword names are not printed
 * per record: decode the "keywords" ext hex bitmap (byte j bit i → keyword 8j+i).
 * `doveadm dump <dir> <uid>` prints only that record (no header sections).
 */

// ───────────────────────────── transaction log dump ─────────────────────────────

export interface LogDumpRecord {
  offset: number;
  /** doveadm's type name without the " (ext)" / " (sync)" suffixes, e.g. "append", "ext-hdr". */
  type: string;
  external: boolean;
  sync: boolean;
  /** Decoded total record size (0 when doveadm printed `size=broken (…)`). */
  size: number;
  /** The `, modseq=N` value doveadm printed (number when it is a safe integer). */
  modseq?: number | string;
  /**
   * Detail lines merged into key→value. Repeated keys (several uids, ranges, …) are
   * joined with ",". See parseDetailLine() for the keys of each record type.
   */
  fields: Record<string, string>;
  /** One entry per detail line, parsed. */
  items: Array<Record<string, string>>;
  /** Raw detail lines without the leading " - ". */
  lines: string[];
}

export interface LogDump {
  header: Record<string, string | number>;
  records: LogDumpRecord[];
}

/** Record type names as printed by doveadm → on-disk type value (masked). */
export const LOG_DUMP_TYPES: Readonly<Record<string, number>> = {
  expunge: 0xcd91,
  "expunge-guid": 0xed90,
  append: 0x2,
  "flag-update": 0x4,
  "header-update": 0x20,
  "ext-intro": 0x40,
  "ext-reset": 0x80,
  "ext-hdr": 0x100,
  "ext-rec": 0x200,
  "keyword-update": 0x400,
  "keyword-reset": 0x800,
  "ext-atomic-inc": 0x1000,
  "modseq-update": 0x8000,
  "ext-hdr32": 0x10000,
  "index-deleted": 0x20000,
  "index-undeleted": 0x40000,
  boundary: 0x80000,
  "attribute-update": 0x100000,
};

function num(s: string): number | string {
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    return Number.isSafeInteger(n) ? n : s;
  }
  return s;
}

const RECORD_RE =
  /^record: offset=(\d+), type=(.+?)((?: \((?:ext|sync)\))*), size=(?:(\d+)|broken \(([0-9a-f]*)\))(?:, modseq=(\d+))?$/;

function stripRangeList(s: string): string {
  // "1-1,2-3," / "1-2, 3-4, " → "1-1,2-3" / "1-2,3-4"
  return s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x !== "")
    .join(",");
}

/**
 * Parse one detail line (without " - ") of a log record into key/value pairs.
 * Keys per type:
 *  append:         uids ("1,2"), and per item uid / flags (hex, only if non-zero)
 *  expunge, keyword-reset: uids ("1-1,2-3")
 *  expunge-guid:   uid, guid
 *  flag-update:    uids ("1-1"), uid1, uid2, add, remove (hex as printed), modseq_inc_flag
 *  keyword-update: modify ("0" add / "1" remove), name, uids ("1-1,3-4")
 *  header-update:  <known base header field> → value, or offset, size, data (hex), dec
 *  ext-hdr(32):    offset, size, data (hex), dec (only for 4-byte data), too_large
 *  ext-rec:        uid, data (hex), dec (only for 4-byte data)
 *  ext-atomic-inc: uid, diff ("+1" / "-1")
 *  modseq-update:  uid, modseq
 *  ext-intro / ext-reset: ext_id, reset_id, hdr_size, record_size, record_align,
 *                  flags, name_size, name (quotes removed) / new_reset_id, preserve_data
 *  boundary:       size
 *  attribute-update: op (add/remove), scope (private/shared), key, timestamp, value_len
 *  anything else:  raw
 */
export function parseDetailLine(type: string, line: string): Record<string, string> {
  let m: RegExpMatchArray | null;
  switch (type) {
    case "append": {
      m = line.match(/^uids=(.*)$/);
      if (m) {
        const uids: string[] = [];
        const flags: string[] = [];
        for (const part of m[1].split(",")) {
          const p = part.trim();
          if (!p) continue;
          const pm = p.match(/^(\d+)(?: \(flags=([0-9a-f]+)\))?$/);
          if (pm) {
            uids.push(pm[1]);
            if (pm[2] !== undefined) flags.push(`${pm[1]}:${pm[2]}`);
          } else uids.push(p);
        }
        const out: Record<string, string> = { uids: uids.join(",") };
        if (flags.length) out.flags = flags.join(",");
        return out;
      }
      break;
    }
    case "expunge":
    case "keyword-reset":
      m = line.match(/^uids=(.*)$/);
      if (m) return { uids: stripRangeList(m[1]) };
      break;
    case "expunge-guid":
      m = line.match(/^uid=(\d+) \(guid ([0-9a-f]*)\)$/);
      if (m) return { uid: m[1], guid: m[2] };
      break;
    case "flag-update":
      m = line.match(/^uids=(\d+)-(\d+) \(flags \+([0-9a-f]+)-([0-9a-f]+), modseq_inc_flag=(-?\d+)\)$/);
      if (m)
        return { uids: `${m[1]}-${m[2]}`, uid1: m[1], uid2: m[2], add: m[3], remove: m[4], modseq_inc_flag: m[5] };
      break;
    case "keyword-update":
      m = line.match(/^modify=(-?\d+), name=(.*?), uids=([\d,\- ]*)$/);
      if (m) return { modify: m[1], name: m[2], uids: stripRangeList(m[3]) };
      break;
    case "ext-rec":
      m = line.match(/^uid=(\d+): (?:([0-9a-f]*)(?: \(dec=(\d+)\))?|(\(record_size too large\)))$/);
      if (m) {
        const out: Record<string, string> = { uid: m[1] };
        if (m[4] !== undefined) out.too_large = "1";
        else {
          out.data = m[2] ?? "";
          if (m[3] !== undefined) out.dec = m[3];
        }
        return out;
      }
      break;
    case "ext-atomic-inc":
      m = line.match(/^uid=(\d+): ([+-]?\d+)$/);
      if (m) return { uid: m[1], diff: m[2] };
      break;
    case "modseq-update":
      m = line.match(/^uid=(\d+) modseq=(\d+)$/);
      if (m) return { uid: m[1], modseq: m[2] };
      break;
    case "boundary":
      m = line.match(/^size=(\d+)$/);
      if (m) return { size: m[1] };
      break;
    case "attribute-update":
      m = line.match(/^(add|remove|\?): ([^/]*)\/(.*) : timestamp=(.*?)(?: value_len=(\d+))?$/);
      if (m) {
        const out: Record<string, string> = { op: m[1], scope: m[2], key: m[3], timestamp: m[4] };
        if (m[5] !== undefined) out.value_len = m[5];
        return out;
      }
      if (line === "broken entry") return { broken: "1" };
      break;
  }
  // header-update raw patches, ext-hdr, ext-hdr32
  m = line.match(/^offset = (\d+), size = (\d+)(?:(?:: ([0-9a-f]*)(?: \(dec=(\d+)\))?)|( \(too large\)))?$/);
  if (m) {
    const out: Record<string, string> = { offset: m[1], size: m[2] };
    if (m[5] !== undefined) out.too_large = "1";
    else if (m[3] !== undefined) {
      out.data = m[3];
      if (m[4] !== undefined) out.dec = m[4];
    }
    return out;
  }
  // generic "key = value" (ext-intro, ext-reset, header-update named fields)
  m = line.match(/^([A-Za-z_][\w ]*?) = (.*)$/);
  if (m) {
    let v = m[2];
    if (m[1] === "name" && v.length >= 2 && v.startsWith("'") && v.endsWith("'")) v = v.slice(1, -1);
    return { [m[1]]: v };
  }
  return { raw: line };
}

function mergeItems(items: Array<Record<string, string>>): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const it of items) {
    for (const [k, v] of Object.entries(it)) {
      fields[k] = k in fields ? `${fields[k]},${v}` : v;
    }
  }
  return fields;
}

/** Parse the stdout of `doveadm dump -t log <file>`. */
export function parseLogDump(text: string): LogDump {
  const header: Record<string, string | number> = {};
  const records: LogDumpRecord[] = [];
  let cur: LogDumpRecord | undefined;
  const finish = () => {
    if (cur) {
      cur.fields = mergeItems(cur.items);
      records.push(cur);
      cur = undefined;
    }
  };
  for (const line of text.split("\n")) {
    if (line === "") continue;
    if (line.startsWith("record: ")) {
      finish();
      const m = line.match(RECORD_RE);
      if (!m) throw new Error(`parseLogDump: unparsable record line: ${JSON.stringify(line)}`);
      const flags = m[3] ?? "";
      cur = {
        offset: Number(m[1]),
        type: m[2],
        external: flags.includes("(ext)"),
        sync: flags.includes("(sync)"),
        size: m[4] !== undefined ? Number(m[4]) : 0,
        fields: {},
        items: [],
        lines: [],
      };
      if (m[5] !== undefined) cur.items.push({ broken: m[5] });
      if (m[6] !== undefined) cur.modseq = num(m[6]);
      continue;
    }
    if (line.startsWith(" - ")) {
      if (!cur) throw new Error(`parseLogDump: detail line before any record: ${JSON.stringify(line)}`);
      const detail = line.slice(3);
      cur.lines.push(detail);
      cur.items.push(parseDetailLine(cur.type, detail));
      continue;
    }
    if (!cur && records.length === 0) {
      const m = line.match(/^([a-z][a-z ]*?) = (.*)$/);
      if (m) {
        const key = m[1];
        const val = m[2];
        if (key === "compat flags" && /^[0-9a-f]+$/.test(val)) header[key] = parseInt(val, 16);
        else header[key] = num(val);
        if (key === "prev file") {
          const pm = val.match(/^(\d+)\/(\d+)$/);
          if (pm) {
            header["prev file seq"] = Number(pm[1]);
            header["prev file offset"] = Number(pm[2]);
          }
        }
        continue;
      }
    }
    throw new Error(`parseLogDump: unexpected line: ${JSON.stringify(line)}`);
  }
  finish();
  return { header, records };
}

// ───────────────────────────────── index dump ─────────────────────────────────

export interface IndexDumpExtension {
  /** Number from "-- Extension N --" (map order). */
  id: number;
  name: string;
  hdrSize: number;
  resetId: number;
  recordOffset: number;
  recordSize: number;
  recordAlign: number;
  /** Decoded " - key ... = value" header lines (list index: " - <id> : <name>" → id → name). */
  header: Record<string, string>;
  /** "header ........ = <hex>" for extensions doveadm does not decode. */
  headerHex?: string;
}

export interface IndexDumpRecordExt {
  /** Registered-extension index printed by doveadm ("ext N"). */
  id: number;
  /** Decimal value doveadm printed for 2/4/8-byte aligned records, else undefined. */
  value?: string;
  hex: string;
  /** Continuation lines "                   : key = value". */
  details: Record<string, string>;
}

export interface IndexDumpRecord {
  seq: number;
  uid: number;
  /** Raw flags byte (includes internal bits such as 0x80 dirty). */
  flags: number;
  /** System flags as IMAP names, e.g. ["\\Flagged", "\\Deleted"]. */
  systemFlags: string[];
  /** Keyword names (from the "keywords" ext bitmap + "-- Keywords --"); "#<n>" if name unknown. */
  keywords: string[];
  /** Value of the "modseq" extension, if present. */
  modseq?: number | string;
  ext: Record<string, IndexDumpRecordExt>;
  /** Cache fields (newest cache record first; first occurrence wins): name → printed value. */
  cache: Record<string, string>;
}

export interface IndexDumpCacheField {
  idx: number;
  name: string;
  type: string;
  size: string;
  decision: string;
  lastUsed: string;
}

export interface IndexDump {
  path?: string;
  /** Base header, keys as printed without the dot padding ("next uid", "day first uid[0]" …).
   *  Values "N" and "N (date)" become numbers; others stay strings ("7.3"). */
  header: Record<string, string | number>;
  extensions: IndexDumpExtension[];
  /** Keyword names by index. */
  keywords: string[];
  cache?: {
    path: string;
    usable: boolean;
    header: Record<string, string | number>;
    fields: IndexDumpCacheField[];
  };
  /** From "-- RECORDS: N". */
  recordsCount?: number;
  records: IndexDumpRecord[];
}

const SYSTEM_FLAG_NAMES: Array<[number, string]> = [
  [0x01, "\\Answered"],
  [0x02, "\\Flagged"],
  [0x04, "\\Deleted"],
  [0x08, "\\Seen"],
  [0x10, "\\Draft"],
];

/** Decode the low 5 flag bits of an index record into IMAP system flag names. */
export function systemFlagNames(flags: number): string[] {
  return SYSTEM_FLAG_NAMES.filter(([bit]) => (flags & bit) !== 0).map(([, n]) => n);
}

function headerValue(v: string): string | number {
  const m = v.match(/^(\d+)(?: \(.*\))?$/);
  if (m) return num(m[1]);
  return v;
}

/** Split "key ..... = value" / "key  = value" (dot/space padding) into [key, value]. */
function splitPadded(line: string): [string, string] | undefined {
  const m = line.match(/^(.*?)[ .]*= (.*)$/);
  if (!m || m[1] === "") return undefined;
  return [m[1], m[2]];
}

function decodeKeywordBitmap(hex: string, names: string[]): string[] {
  const out: string[] = [];
  for (let j = 0; j * 2 < hex.length; j++) {
    const byte = parseInt(hex.slice(j * 2, j * 2 + 2), 16);
    for (let i = 0; i < 8; i++) {
      if (byte & (1 << i)) {
        const idx = j * 8 + i;
        out.push(names[idx] ?? `#${idx}`);
      }
    }
  }
  return out;
}

/** Parse the stdout of `doveadm dump -t index <dir|file> [uid]`. */
export function parseIndexDump(text: string): IndexDump {
  const dump: IndexDump = { header: {}, extensions: [], keywords: [], records: [] };
  type Section = "none" | "header" | "ext" | "keywords" | "cache" | "cachefields" | "records";
  let section: Section = "none";
  let ext: IndexDumpExtension | undefined;
  let rec: IndexDumpRecord | undefined;
  let lastExt: IndexDumpRecordExt | undefined;

  for (const line of text.split("\n")) {
    if (line === "") continue;
    let m: RegExpMatchArray | null;
    if ((m = line.match(/^-- INDEX: (.*)$/))) {
      dump.path = m[1];
      section = "header";
      continue;
    }
    if ((m = line.match(/^-- Extension (\d+) --$/))) {
      ext = {
        id: Number(m[1]),
        name: "",
        hdrSize: 0,
        resetId: 0,
        recordOffset: 0,
        recordSize: 0,
        recordAlign: 0,
        header: {},
      };
      dump.extensions.push(ext);
      section = "ext";
      continue;
    }
    if (line === "no extensions") continue;
    if (line === "-- Keywords --") {
      section = "keywords";
      continue;
    }
    if ((m = line.match(/^-- CACHE: (.*)$/))) {
      dump.cache = { path: m[1], usable: true, header: {}, fields: [] };
      section = "cache";
      continue;
    }
    if (line === "-- Cache fields --") {
      section = "cachefields";
      continue;
    }
    if ((m = line.match(/^-- RECORDS: (\d+)$/))) {
      dump.recordsCount = Number(m[1]);
      section = "records";
      continue;
    }
    if ((m = line.match(/^RECORD: seq=(\d+), uid=(\d+), flags=0x([0-9a-f]+)(?: .*)?$/))) {
      const flags = parseInt(m[3], 16);
      rec = {
        seq: Number(m[1]),
        uid: Number(m[2]),
        flags,
        systemFlags: systemFlagNames(flags),
        keywords: [],
        ext: {},
        cache: {},
      };
      dump.records.push(rec);
      lastExt = undefined;
      section = "records";
      continue;
    }

    switch (section) {
      case "header": {
        const kv = splitPadded(line);
        if (kv) dump.header[kv[0]] = headerValue(kv[1]);
        break;
      }
      case "ext": {
        if (!ext) break;
        if (line === "header") break;
        if ((m = line.match(/^ - (\d+) : (.*)$/))) {
          ext.header[m[1]] = m[2];
          break;
        }
        if (line.startsWith(" - ")) {
          const kv = splitPadded(line.slice(3));
          if (kv) ext.header[kv[0]] = kv[1];
          else ext.header[line.slice(3)] = "";
          break;
        }
        const kv = splitPadded(line);
        if (!kv) break;
        const [k, v] = kv;
        switch (k) {
          case "name":
            ext.name = v;
            break;
          case "hdr_size":
            ext.hdrSize = Number(v);
            break;
          case "reset_id":
            ext.resetId = Number(v);
            break;
          case "record_offset":
            ext.recordOffset = Number(v);
            break;
          case "record_size":
            ext.recordSize = Number(v);
            break;
          case "record_align":
            ext.recordAlign = Number(v);
            break;
          case "header":
            ext.headerHex = v;
            break;
          default:
            ext.header[k] = v;
        }
        break;
      }
      case "keywords":
        if ((m = line.match(/^\s*(\d+) = (.*)$/))) dump.keywords[Number(m[1])] = m[2];
        break;
      case "cache":
        if (!dump.cache) break;
        if (line === "cache is unusable") dump.cache.usable = false;
        else {
          const kv = splitPadded(line);
          if (kv) dump.cache.header[kv[0]] = headerValue(kv[1]);
        }
        break;
      case "cachefields":
        if (!dump.cache) break;
        if ((m = line.match(/^\s*(\d+): (\S+)\s+(\S+)\s+(\d+|-)\s+(\S+)\s+(.*)$/)))
          dump.cache.fields.push({
            idx: Number(m[1]),
            name: m[2],
            type: m[3],
            size: m[4],
            decision: m[5],
            lastUsed: m[6],
          });
        break;
      case "records": {
        if (!rec) break;
        if ((m = line.match(/^ - ext (\d+) (.+?) *: (.*?) ?\(([0-9a-f]*)\)$/))) {
          const value = m[3].trim();
          lastExt = { id: Number(m[1]), hex: m[4], details: {} };
          if (value !== "") lastExt.value = value;
          rec.ext[m[2]] = lastExt;
          break;
        }
        if ((m = line.match(/^ {19}: (.*?)\s*= (.*)$/))) {
          if (lastExt) lastExt.details[m[1]] = m[2];
          break;
        }
        if (line.startsWith(" - cache offset=") || line === " - broken cache") {
          lastExt = undefined;
          if (line === " - broken cache") rec.cache["(broken)"] = "1";
          break;
        }
        if ((m = line.match(/^ {4}- ([^:]+): ?(.*)$/))) {
          if (!(m[1] in rec.cache)) rec.cache[m[1]] = m[2];
          break;
        }
        break;
      }
      default:
        break;
    }
  }

  for (const r of dump.records) {
    const kw = r.ext["keywords"];
    if (kw) r.keywords = decodeKeywordBitmap(kw.hex, dump.keywords);
    const ms = r.ext["modseq"];
    if (ms && ms.value !== undefined) r.modseq = num(ms.value);
  }
  return dump;
}
