/**
 * What the mailbox indexes say about the map: which map uids their records
 * point at, with the GUID and flags of each record. Purge uses it as a
 * second opinion before deleting data; rebuild to recount references and
 * to put messages back.
 */
import * as fs from "node:fs";
import { loadState } from "../../index-io/load-state.js";
import { extension, extensionHeader, recordAt } from "../../projections/read.js";
import { readCheckpoint } from "../../index-io/checkpoint-file.js";
import { isCorruptionError } from "../../shared/errors.js";
import type { IndexMapState } from "../../projections/state.js";
import { listDboxMailboxes } from "../dbox/mailbox-tree.js";
import type { DboxLayout } from "../dbox/layout.js";
import { decodeMdboxHeader, decodeMdboxRecord, GUID_EXT_NAME, MDBOX_EXT_NAME, MDBOX_HDR_EXT_NAME, type MdboxIndexHeader } from "./mailbox-format.js";

/** One mailbox record as rebuild and purge need it. */
export interface MailboxMessageRef {
  readonly uid: number;
  readonly flags: number;
  readonly keywords: readonly string[];
  /** 0 when the record has no `mdbox` field. */
  readonly mapUid: number;
  readonly saveDate: number;
  /** All zero when the record has no `guid` field. */
  readonly guid128: Uint8Array;
}

/**
 * A mailbox as read from disk. `source` says what could be read: the log
 * (normal), only dovecot.index, only dovecot.index.backup (the main index is
 * broken), or nothing (lost: no index at all, or nothing readable).
 */
export interface MailboxSnapshot {
  readonly name: string;
  readonly dir: string;
  readonly prefix: string;
  readonly source: "log" | "index" | "backup" | "none";
  readonly state: IndexMapState | undefined;
  readonly header: MdboxIndexHeader | undefined;
  readonly messages: readonly MailboxMessageRef[];
  /** Why the log could not be read (source ≠ "log"), for reports. */
  readonly error?: string;
}

/** @returns the message records of `state`. */
export function messageRefs(state: IndexMapState): MailboxMessageRef[] {
  const out: MailboxMessageRef[] = [];
  for (let seq = 1; seq <= state.records.count; seq++) {
    const r = recordAt(state, seq)!;
    const mdbox = decodeMdboxRecord(r.ext(MDBOX_EXT_NAME));
    out.push({
      uid: r.uid, flags: r.flags, keywords: r.keywords,
      mapUid: mdbox?.mapUid ?? 0, saveDate: mdbox?.saveDate ?? 0,
      guid128: r.ext(GUID_EXT_NAME) ?? new Uint8Array(16),
    });
  }
  return out;
}

/** @returns the mailbox's mdbox-hdr, if it has a valid one. */
export function mdboxHeaderOf(state: IndexMapState): MdboxIndexHeader | undefined {
  const ext = extension(state, MDBOX_HDR_EXT_NAME);
  return ext === undefined ? undefined : decodeMdboxHeader(extensionHeader(ext));
}

/**
 * Reads one mailbox: its log, else dovecot.index, else dovecot.index.backup.
 * Never throws for corrupt index files; other errors (permissions, I/O)
 * are thrown, so that nothing takes an unreadable mailbox for an empty or
 * broken one.
 */
export function snapshotMailbox(layout: DboxLayout, name: string): MailboxSnapshot {
  const dir = layout.mailDir(name);
  const prefix = layout.indexPrefix(name);
  const hasIndex = fs.existsSync(prefix + ".log") || fs.existsSync(prefix);
  let error: string | undefined;
  const attempts: Array<[MailboxSnapshot["source"], () => IndexMapState | undefined]> = [
    ["log", () => (hasIndex ? loadState(prefix) : undefined)],
    ["index", () => readCheckpoint(prefix)],
    ["backup", () => readCheckpoint(prefix + ".backup")],
  ];
  for (const [source, read] of attempts) {
    try {
      const state = read();
      if (state === undefined) continue;
      return { name, dir, prefix, source, state, header: mdboxHeaderOf(state), messages: messageRefs(state), error };
    } catch (err) {
      // A corrupt file: fall back to the next one, remembering why.
      if (!isCorruptionError(err)) throw err;
      error ??= err.message;
    }
  }
  return { name, dir, prefix, source: "none", state: undefined, header: undefined, messages: [], error };
}

/** Snapshots of every mailbox in the tree. */
export function snapshotAllMailboxes(layout: DboxLayout): MailboxSnapshot[] {
  return listDboxMailboxes(layout.root).map((name) => snapshotMailbox(layout, name));
}

/** How many records of readable (`log`) snapshots point at each map uid. */
export function countReferences(snapshots: readonly MailboxSnapshot[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const s of snapshots) {
    if (s.source !== "log") continue;
    for (const m of s.messages) if (m.mapUid !== 0) counts.set(m.mapUid, (counts.get(m.mapUid) ?? 0) + 1);
  }
  return counts;
}
