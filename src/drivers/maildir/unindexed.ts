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
import { forEachIndexMessage } from "./index-walk.js";

const SYSTEM_FLAGS = 0x1f;

export function maildirHasUnindexedChanges(ctx: MaildirContext, state: IndexMapState): boolean {
  const hdr = maildirHeaderOf(state);
  const same = (dir: string, mtime: number, nsecs: number) => sameStamp(statDirStamp(path.join(ctx.mailDir, dir)), mtime, nsecs);
  if (hdr.newMtime !== 0 && same("new", hdr.newMtime, hdr.newMtimeNsecs) && same("cur", hdr.curMtime, hdr.curMtimeNsecs)) return false;
  ctx.files.scan();
  const list = ctx.uidlist.read();
  let matched = 0;
  let changed = false;
  forEachIndexMessage(state, (m) => {
    if (changed) return;
    const rec = list?.recordOf(m.uid);
    const file = rec && ctx.files.find(maildirBaseName(rec.fileName));
    if (!file) {
      changed = true;
      return;
    }
    matched++;
    const quick = quickMaildirFlags(file.name);
    const flags = quick >= 0 ? quick : parseMaildirFileName(file.name).flags;
    changed = flags !== (m.flags & SYSTEM_FLAGS);
  });
  return changed || ctx.files.count() > matched;
}

function sameStamp(s: FileStamp, mtime: number, nsecs: number): boolean {
  return s.mtime === mtime && s.mtimeNsecs === nsecs;
}
