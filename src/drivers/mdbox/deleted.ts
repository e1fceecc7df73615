/**
 * Deleted-message access: messages whose refcount dropped to 0 (expunged
 * from every mailbox) stay in their m.N file until a purge. Until then they
 * can be listed, read, and put back into a mailbox — a new mailbox record
 * pointing at the same map uid, refcount back to 1. No data is copied.
 */
import * as fs from "node:fs";
import { InvalidArgumentError, MailCorruptedError, MailstoreError } from "../../shared/errors.js";
import { readDboxMessageAt } from "../dbox/files.js";
import { generateGuid128, messageGuid128 } from "../dbox/guid.js";
import { readDboxMetadata } from "../dbox/metadata.js";
import { decodeMutf7 } from "../mutf7.js";
import type { MdboxContext } from "./context.js";
import { initialMailboxRecords, mdboxHeaderRecords } from "./mailbox-format.js";
import { mdboxHeaderOf } from "./mailbox-refs.js";
import { appendRecords, writeMailbox } from "./mailbox-writer.js";
import { refIncRecords } from "../../projections/mdbox-map-format.js";
import { lookupMapEntry, type MapEntry } from "../../projections/mdbox-map-view.js";

/** A refcount-0 message still in storage. */
export interface DeletedMessage extends MapEntry {
  readonly guid: string;
  readonly receivedTime: number | undefined;
  /** The mailbox it was first saved to (metadata `B`, decoded), if recorded. */
  readonly origMailbox: string | undefined;
  readonly bodySizeBytes: number;
}

/** @returns the mailbox name that metadata `B` (a storage name, modified UTF-7 per level) stands for. */
export function mailboxNameOfStorageName(storageName: string): string {
  try {
    return storageName.split("/").map(decodeMutf7).join("/");
  } catch (err) {
    // Not modified UTF-7: the raw name, as Dovecot shows it.
    if (err instanceof InvalidArgumentError) return storageName;
    throw err;
  }
}

/**
 * What makes a deleted message unlistable rather than the listing fail: its
 * m.N file is gone (purged meanwhile) or its bytes there are not a dbox
 * message any more. Anything else (EACCES, EIO) is thrown.
 */
function notThere(err: unknown): undefined {
  if (err instanceof MailCorruptedError) return undefined;
  if (err instanceof MailstoreError && err.code === "NOT_FOUND") return undefined;
  if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
  throw err;
}

/** Every refcount-0 message whose data is still there, in map-uid order. */
export async function listDeletedMessages(ctx: MdboxContext): Promise<DeletedMessage[]> {
  if (!ctx.map.exists()) return [];
  ctx.map.open().refresh();
  const out: DeletedMessage[] = [];
  for (const e of ctx.map.entries()) {
    if (e.refcount !== 0) continue;
    const found = await readEntry(ctx, e).catch(notThere);
    if (found !== undefined) out.push(found.info);
  }
  return out;
}

/**
 * @returns the stored bytes of refcount-0 message `mapUid`.
 * @throws MailstoreError NOT_FOUND when it is not a deleted message any more (purged, or referenced again).
 */
export async function readDeletedMessage(ctx: MdboxContext, mapUid: number): Promise<Uint8Array> {
  const e = ctx.map.open().lookup(mapUid);
  if (e === undefined || e.refcount !== 0) throw new MailstoreError("NOT_FOUND", `map uid ${mapUid} is not a deleted message`, { path: ctx.paths.mapPrefix });
  return (await readEntry(ctx, e)).body;
}

/** Options of recoverDeletedMessage(). */
export interface RecoverOptions {
  /** Target mailbox; default the message's original mailbox (metadata `B`), else INBOX. */
  readonly mailbox?: string;
  /** Creates the target's log when it has none (needs a UIDVALIDITY). */
  readonly newUidValidity: () => Promise<number>;
}

/**
 * Puts deleted message `mapUid` back into a mailbox. The refcount goes up
 * first (so a purge that starts meanwhile keeps it), then the mailbox gets
 * its record; a crash in between only leaks a reference.
 * @returns the mailbox and the uid the message got there.
 * @throws MailstoreError NOT_FOUND when the message is no longer deleted-but-present.
 */
export async function recoverDeletedMessage(ctx: MdboxContext, mapUid: number, opts: RecoverOptions): Promise<{ mailbox: string; uid: number }> {
  const map = ctx.map.open();
  const e = map.lookup(mapUid);
  if (e === undefined) throw new MailstoreError("NOT_FOUND", `map uid ${mapUid} is not in the map`, { path: ctx.paths.mapPrefix });
  const { info } = await readEntry(ctx, e);
  const mailbox = opts.mailbox ?? info.origMailbox ?? "INBOX";
  const prefix = ctx.paths.indexPrefix(mailbox);
  ctx.paths.makeMailboxDirs(mailbox);
  const uidValidity = fs.existsSync(prefix + ".log") ? 0 : await opts.newUidValidity();

  let raised = false;
  await map.transact(async (state) => {
    const now = lookupMapEntry(state, mapUid);
    if (now === undefined || now.refcount !== 0) return [];
    raised = true;
    return [refIncRecords([{ mapUid, diff: 1 }], { external: false })];
  });
  if (!raised) throw new MailstoreError("NOT_FOUND", `map uid ${mapUid} is no longer a deleted message`, { path: ctx.paths.mapPrefix });

  let uid = 0;
  await writeMailbox(prefix, (state) => {
    const header = mdboxHeaderOf(state);
    const headerRecords = header === undefined || header.mapUidValidity !== map.uidValidity
      ? mdboxHeaderRecords({ mapUidValidity: map.uidValidity, mailboxGuid: header?.mailboxGuid ?? generateGuid128(), flags: header?.flags ?? 0 })
      : [];
    const { records, uids } = appendRecords(state.header.nextUid, [
      { mapUid, guid128: messageGuid128(info.guid), flags: 0, keywords: [], saveDate: Math.floor(Date.now() / 1000) },
    ]);
    uid = uids[0];
    return [[...records, ...headerRecords]];
  }, {
    fsync: ctx.settings.fsync,
    initialRecords: () => initialMailboxRecords({ mapUidValidity: map.uidValidity, mailboxGuid: generateGuid128(), flags: 0 }, uidValidity),
  });
  return { mailbox, uid };
}

async function readEntry(ctx: MdboxContext, e: MapEntry): Promise<{ info: DeletedMessage; body: Uint8Array }> {
  const located = ctx.paths.locate(e.fileId);
  if (located === undefined) throw new MailstoreError("NOT_FOUND", `m.${e.fileId} is missing`, { path: ctx.paths.filePath(e.fileId) });
  const message = await readDboxMessageAt(located.path, e.offset);
  const meta = readDboxMetadata(message.metadata);
  const info: DeletedMessage = {
    ...e,
    guid: meta.guid ?? "",
    receivedTime: meta.receivedTime,
    origMailbox: meta.origMailbox === undefined ? undefined : mailboxNameOfStorageName(meta.origMailbox),
    bodySizeBytes: message.body.length,
  };
  return { info, body: new Uint8Array(message.body) };
}
