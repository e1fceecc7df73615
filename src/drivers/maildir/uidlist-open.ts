/**
 * Opening a mailbox's dovecot-uidlist for a save or sync (uidlist lock held):
 * created when missing, and checked against the index's UIDVALIDITY.
 */
import { IndexCorruptedError } from "../../shared/errors.js";
import type { IndexMapState } from "../../projections/state.js";
import { generateGuid128, guid128ToString } from "../dbox/guid.js";
import type { MaildirContext } from "./context.js";
import { maildirBaseName } from "./filename.js";
import type { UidlistSnapshot } from "./uidlist-file.js";

/**
 * @returns the uidlist, created when missing with V = the index's
 *   UIDVALIDITY (or a new one), N = the index's next UID and a new mailbox
 *   GUID, as Dovecot's first sync writes it.
 * @throws IndexCorruptedError when it names another UIDVALIDITY than the
 *   index (Dovecot then resets the index and every UID changes; we refuse).
 */
export async function openUidlist(ctx: MaildirContext, state: IndexMapState): Promise<UidlistSnapshot> {
  let list = ctx.uidlist.read();
  if (!list) {
    const uidValidity = state.header.uidValidity || (await ctx.nextUidValidity());
    list = ctx.uidlist.create({ version: 3, uidValidity, nextUid: state.header.nextUid, guid: guid128ToString(generateGuid128()), extensions: [] });
  }
  const v = state.header.uidValidity;
  if (v !== 0 && list.header.uidValidity !== v) {
    throw new IndexCorruptedError(`dovecot-uidlist has UIDVALIDITY ${list.header.uidValidity} but the index ${v}`, { path: ctx.uidlist.path });
  }
  if (list.header.version !== 3 || list.header.guid === undefined) {
    // Dovecot rewrites such a file as version 3 with a mailbox GUID before using it.
    const records = list.records.map((r) => ({ ...r, fileName: maildirBaseName(r.fileName) }));
    list = ctx.uidlist.recreate({ ...list.header, version: 3, guid: list.header.guid ?? guid128ToString(generateGuid128()) }, records);
  }
  return list;
}
