import { assertNever } from "../shared/errors.js";
import type { LogEntry, LogFileHeader, LogRecord, ParsedLogFile, UidRange } from "../index.js";
import { hex, toJson } from "./json.js";

/** `mailstore dump --json` of a log file: header and every record with its running modseq. */
export function logDumpJson(file: ParsedLogFile): unknown {
  const records: unknown[] = [];
  let modseq = file.header.initialModseq;
  for (const tx of file.transactions) {
    if (tx.framed) {
      const txSize = tx.end.offset - tx.position.offset;
      records.push(toJson({ offset: tx.position.offset, type: "boundary", external: true, size: 12, modseq, txSize }));
    }
    for (const entry of tx.entries) {
      records.push(entryJson(entry));
      modseq = entry.modseq;
    }
  }
  return {
    header: toJson(headerFields(file.header)),
    records,
    syncOffset: file.syncOffset,
    trailingBytes: file.trailingBytes,
  };
}

function headerFields(h: LogFileHeader) {
  return {
    version: `${h.majorVersion}.${h.minorVersion}`,
    hdrSize: h.hdrSize,
    indexId: h.indexId,
    fileSeq: h.fileSeq,
    prevFileSeq: h.prevFileSeq,
    prevFileOffset: h.prevFileOffset,
    createStamp: h.createStamp,
    initialModseq: h.initialModseq,
    compatFlags: h.compatFlags,
  };
}

function entryJson(entry: LogEntry): unknown {
  const { type, external, sync, ...payload } = entry.record;
  return toJson({
    offset: entry.position.offset,
    type,
    external,
    sync: sync || undefined,
    size: entry.size,
    modseq: entry.modseq,
    ...payload,
  });
}

/** Text like `doveadm dump -t log`: header fields, then one block per record. */
export function logDumpText(file: ParsedLogFile): string {
  const h = file.header;
  const lines = [
    `version = ${h.majorVersion}.${h.minorVersion}`,
    `hdr size = ${h.hdrSize}`,
    `index id = ${h.indexId}`,
    `file seq = ${h.fileSeq}`,
    `prev file = ${h.prevFileSeq}/${h.prevFileOffset}`,
    `create stamp = ${h.createStamp}`,
    `initial modseq = ${h.initialModseq}`,
    `compat flags = ${h.compatFlags}`,
  ];
  let modseq = h.initialModseq;
  for (const tx of file.transactions) {
    if (tx.framed) lines.push(`record: offset=${tx.position.offset}, type=boundary (ext), size=12`, ` - size=${tx.end.offset - tx.position.offset}`);
    for (const entry of tx.entries) {
      const r = entry.record;
      const moved = entry.modseq !== modseq ? `, modseq=${entry.modseq}` : "";
      modseq = entry.modseq;
      lines.push(`record: offset=${entry.position.offset}, type=${r.type}${r.external ? " (ext)" : ""}, size=${entry.size}${moved}`);
      for (const detail of recordDetails(r)) lines.push(` - ${detail}`);
    }
  }
  if (file.trailingBytes > 0) lines.push(`(${file.trailingBytes} bytes after the last complete transaction at ${file.syncOffset})`);
  return lines.join("\n") + "\n";
}

function uidList(ranges: readonly UidRange[]): string {
  return ranges.map((r) => (r.uid1 === r.uid2 ? `${r.uid1}` : `${r.uid1}-${r.uid2}`)).join(",") + ",";
}

function recordDetails(r: LogRecord): string[] {
  switch (r.type) {
    case "expunge":
    case "keyword-reset":
      return [`uids=${uidList(r.ranges)}`];
    case "append":
      return [`uids=${r.messages.map((m) => m.uid).join(",")},`];
    case "flag-update":
      return r.updates.map((u) => `uids=${u.uid1}-${u.uid2} (flags +${u.addFlags.toString(16)}-${u.removeFlags.toString(16)}, modseq_inc_flag=${u.modseqIncFlag})`);
    case "header-update":
    case "ext-hdr":
    case "ext-hdr32":
      return r.patches.map((p) => `offset = ${p.offset}, size = ${p.data.length}: ${hex(p.data)}`);
    case "ext-intro":
      return r.intros.flatMap((i) => [
        `ext_id = ${i.extId}`, `reset_id = ${i.resetId}`, `hdr_size = ${i.hdrSize}`, `record_size = ${i.recordSize}`,
        `record_align = ${i.recordAlign}`, `flags = ${i.flags}`, `name_size = ${i.name.length}`, `name = '${i.name}'`,
      ]);
    case "ext-reset":
      return [`new_reset_id = ${r.newResetId}`, `preserve_data = ${r.preserveData}`];
    case "ext-rec":
      return r.updates.map((u) => `uid=${u.uid}: ${hex(u.data)}`);
    case "keyword-update":
      return [`modify=${r.modifyType === "add" ? 0 : 1}, name=${r.name}, uids=${uidList(r.ranges)}`];
    case "ext-atomic-inc":
      return r.updates.map((u) => `uid=${u.uid}, ${u.diff >= 0 ? "+" : ""}${u.diff}`);
    case "expunge-guid":
      return r.expunges.map((e) => `uid=${e.uid} (guid ${hex(e.guid)})`);
    case "modseq-update":
      return r.updates.map((u) => `uid=${u.uid} modseq=${u.modseq}`);
    case "attribute-update":
      return r.changes.map((c) => `${c.op}${c.scope} ${c.key} (timestamp ${c.timestamp}${c.valueLength !== undefined ? `, value length ${c.valueLength}` : ""})`);
    case "boundary":
      return [`size=${r.size}`];
    case "index-deleted":
    case "index-undeleted":
      return [];
    default:
      return assertNever(r);
  }
}
