import { flagNames } from "../shared/flags.js";
import { getHeader, messageCount, recordAt, type IndexMapState } from "../index.js";
import { hex, toJson } from "./json.js";

/** `mailstore dump --json` of dovecot.index / dovecot.map.index: header, extensions, keywords, records. */
export function indexDumpJson(state: IndexMapState): unknown {
  const records = [];
  for (let seq = 1; seq <= messageCount(state); seq++) {
    const r = recordAt(state, seq)!;
    const ext: Record<string, string> = {};
    for (const e of state.extensions) {
      const bytes = e.recordSize > 0 ? r.ext(e.name) : undefined;
      if (bytes) ext[e.name] = hex(bytes);
    }
    records.push({ seq, uid: r.uid, flags: r.flags, flagNames: flagNames(r.flags), keywords: r.keywords, modseq: r.modseq, ext });
  }
  return toJson({
    header: getHeader(state),
    extensions: state.extensions.map((e, id) => ({
      id, name: e.name, hdrSize: e.hdrSize, resetId: e.resetId, recordOffset: e.recordOffset,
      recordSize: e.recordSize, recordAlign: e.recordAlign, header: e.hdrData.subarray(0, e.hdrSize),
    })),
    keywords: state.keywords,
    records,
  });
}

/** Text like `doveadm dump -t index`: header fields, extensions, keywords, one line per record. */
export function indexDumpText(state: IndexMapState): string {
  const j = indexDumpJson(state) as {
    header: Record<string, unknown>;
    extensions: Array<Record<string, unknown>>;
    keywords: string[];
    records: Array<{ seq: number; uid: number; flags: number; flagNames: string[]; keywords: string[]; ext: Record<string, string> }>;
  };
  const lines: string[] = [];
  for (const [k, v] of Object.entries(j.header)) lines.push(`${k} = ${Array.isArray(v) ? v.join(",") : v}`);
  for (const e of j.extensions) {
    lines.push(`-- Extension ${e.id} --`);
    for (const [k, v] of Object.entries(e)) if (k !== "id") lines.push(`${k} = ${v}`);
  }
  lines.push("-- Keywords --");
  j.keywords.forEach((k, i) => lines.push(`${i} = ${k}`));
  lines.push(`-- RECORDS: ${j.records.length}`);
  for (const r of j.records) {
    const ext = Object.entries(r.ext).map(([k, v]) => `${k}=${v}`).join(" ");
    lines.push(`RECORD: seq=${r.seq}, uid=${r.uid}, flags=0x${r.flags.toString(16).padStart(2, "0")} (${r.flagNames.join(" ")}) keywords=(${r.keywords.join(" ")}) ${ext}`.trimEnd());
  }
  return lines.join("\n") + "\n";
}
