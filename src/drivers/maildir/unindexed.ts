/**
 * Whether new/ and cur/ hold changes no index has seen, found without
 * writing anything (read-only opens do not sync). The quick check's stat()s
 * first; only when new/ or cur/ moved since the `maildir` header recorded
 * them, a name-by-name look as a sync takes: a file dovecot-uidlist does not
 * list for an indexed UID, an indexed message whose file is gone, a file
 * name carrying other system flags than the index, or a file no indexed
 * message accounts for. A moved mtime alone is not enough: a sync's own
 * renames in new/ move it after the scan it records.
 */
import * as path from "node:path";
import type { IndexMapState } from "../../projections/state.js";
import type { MaildirContext } from "./context.js";
import { statDirStamp } from "./dir-scan.js";
import { maildirBaseName, parseMaildirFileName, quickMaildirFlags } from "./filename.js";
import { maildirHeaderOf, type FileStamp } from "./index-header.js";

const SYSTEM_FLAGS = 0x1f;

export function maildirHasUnindexedChanges(ctx: MaildirContext, state: IndexMapState): boolean {
  const hdr = maildirHeaderOf(state);
  const same = (dir: string, mtime: number, nsecs: number) => sameStamp(statDirStamp(path.join(ctx.mailDir, dir)), mtime, nsecs);
  if (hdr.newMtime !== 0 && same("new", hdr.newMtime, hdr.newMtimeNsecs) && same("cur", hdr.curMtime, hdr.curMtimeNsecs)) return false;
  ctx.files.scan();
  const list = ctx.uidlist.read();
  // File by file, in directory order (no map of the names by base needed):
  // each must be listed, for an indexed message no other file took, with
  // that message's system flags; then as many files as messages means
  // every message has its file. The first difference ends the walk.
  const records = state.records;
  const taken = new Uint8Array(records.count);
  let files = 0;
  const matches = ctx.files.everyName((name) => {
    files++;
    const rec = list?.byBase.get(maildirBaseName(name));
    const index = rec === undefined ? -1 : records.indexOfUid(rec.uid);
    if (index < 0 || taken[index] !== 0) return false;
    taken[index] = 1;
    const quick = quickMaildirFlags(name);
    const flags = quick >= 0 ? quick : parseMaildirFileName(name).flags;
    const row = records.row(index);
    return flags === (row.bytes[row.offset + 4] & SYSTEM_FLAGS);
  });
  return !matches || files !== records.count;
}

function sameStamp(s: FileStamp, mtime: number, nsecs: number): boolean {
  return s.mtime === mtime && s.mtimeNsecs === nsecs;
}
