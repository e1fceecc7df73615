import { assertNever } from "../shared/errors.js";
import type { LogRecord, LogTransaction, UidRange } from "../index.js";
import { flagNames } from "../shared/flags.js";
import { toJson } from "./json.js";

/** One line per transaction for `mailstore log`: position, modseq and what each record did. */
export function transactionLine(tx: LogTransaction): string {
  const what = tx.entries.map((e) => recordSummary(e.record)).filter((s) => s !== "");
  return `${tx.position.fileSeq}:${tx.position.offset} modseq=${tx.modseq}${tx.external ? " ext" : ""}  ${what.join("; ")}`;
}

/** `mailstore log --json`: one object per transaction. */
export function transactionJson(tx: LogTransaction): unknown {
  return toJson({
    position: tx.position,
    end: tx.end,
    modseq: tx.modseq,
    external: tx.external,
    records: tx.entries.map((e) => {
      const { type, external, sync, ...payload } = e.record;
      return { offset: e.position.offset, type, external, modseq: e.modseq, ...payload };
    }),
  });
}

function uids(ranges: readonly UidRange[]): string {
  return ranges.map((r) => (r.uid1 === r.uid2 ? `${r.uid1}` : `${r.uid1}:${r.uid2}`)).join(",");
}

function flagDelta(add: number, remove: number): string {
  const parts = [...flagNames(add).map((f) => `+${f}`), ...flagNames(remove).map((f) => `-${f}`)];
  const backend = (add | remove) & 0xe0;
  if (backend) parts.push(`backend+0x${(add & 0xe0).toString(16)}-0x${(remove & 0xe0).toString(16)}`);
  return parts.join(" ");
}

function recordSummary(r: LogRecord): string {
  switch (r.type) {
    case "append":
      return `append ${r.messages.map((m) => `${m.uid}${m.flags & 0x1f ? `(${flagNames(m.flags).join(" ")})` : ""}`).join(",")}`;
    case "flag-update":
      return r.updates.map((u) => `flags ${u.uid1 === u.uid2 ? u.uid1 : `${u.uid1}:${u.uid2}`} ${flagDelta(u.addFlags, u.removeFlags)}`).join("; ");
    case "keyword-update":
      return `keyword ${r.modifyType === "add" ? "+" : "-"}${r.name} ${uids(r.ranges)}`;
    case "keyword-reset":
      return `keywords reset ${uids(r.ranges)}`;
    case "expunge":
      return `${r.external ? "expunge" : "expunge request"} ${uids(r.ranges)}`;
    case "expunge-guid":
      return `${r.external ? "expunge" : "expunge request"} ${r.expunges.map((e) => e.uid).join(",")}`;
    case "modseq-update":
      return `modseq ${r.updates.map((u) => `${u.uid}>=${u.modseq}`).join(",")}`;
    case "ext-intro":
      return `ext ${r.intros.map((i) => i.name || `#${i.extId}`).join(",")}`;
    case "ext-rec":
      return `ext-rec ${r.updates.map((u) => u.uid).join(",")}`;
    case "ext-atomic-inc":
      return `ext-inc ${r.updates.map((u) => `${u.uid}${u.diff >= 0 ? "+" : ""}${u.diff}`).join(",")}`;
    case "ext-reset":
      return `ext-reset ${r.newResetId}`;
    case "ext-hdr":
    case "ext-hdr32":
      return "ext-hdr";
    case "header-update":
      return `header ${r.patches.map((p) => `@${p.offset}`).join(",")}`;
    case "attribute-update":
      return `attributes ${r.changes.map((c) => `${c.op}${c.scope}/${c.key}@${new Date(c.timestamp * 1000).toISOString()}`).join(",")}`;
    case "index-deleted":
      return r.external ? "mailbox deleted" : "mailbox delete request";
    case "index-undeleted":
      return "mailbox undeleted";
    case "boundary":
      return "";
    default:
      return assertNever(r);
  }
}
