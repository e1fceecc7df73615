/**
 * Deciding, for every message of a scanned mbox, what a sync does with it —
 * without touching any file. Who wins a difference between the file and the
 * index follows Dovecot (mbox-sync.c mbox_sync_update_flags/_index): the
 * index for messages with pending changes (index-view.ts), the file for the
 * others. Headers that must change are either "stale" (they say other flags
 * than the index: written now, in place or by a rewrite) or merely lacking
 * (no X-UID, or an X-Keywords naming unknown keywords: written whenever the
 * file is rewritten anyway, and until then the index marks the message
 * DIRTY and keeps its header MD5 — Dovecot's lazy writes).
 */
import { MAIL_FLAGS_NONRECENT } from "../../log/types.js";
import type { IndexMapState } from "../../projections/state.js";
import { headerBlock } from "./file-messages.js";
import { mboxHeaderMd5 } from "./header-md5.js";
import type { IndexedMessage, PendingChanges } from "./index-view.js";
import { MboxUidReconciler, type FileMessageUidInfo, type ReconciledMessage } from "./reconcile.js";
import { NO_KEYWORDS, type MboxMessage } from "./scan.js";
import type { ByteSource } from "./source.js";

/** The decision for one file message. */
export interface MessagePlan {
  readonly msg: MboxMessage;
  /** 0 for the pseudo message. */
  readonly uid: number;
  /** The index message it is; undefined for one new to the index (or the pseudo message). */
  readonly indexed?: IndexedMessage;
  /** Expunged by this sync: left out of the file. */
  readonly drop: boolean;
  /** Flags (IMAP bits) and keywords the message has after the sync. */
  readonly flags: number;
  readonly keywords: readonly string[];
  /** No `O` in Status. */
  readonly recent: boolean;
  /** The header says other flags/keywords than `flags`/`keywords`: write it now. */
  readonly stale: boolean;
  /** The header lacks its X-UID or has unusable keywords: write it at the next rewrite. */
  readonly lacking: boolean;
  /** The file changed the flags/keywords: the index takes them. */
  readonly fileWins: boolean;
  /** Header MD5, for messages left `lacking`. */
  readonly md5?: Uint8Array;
}

export interface SyncPlan {
  readonly messages: readonly MessagePlan[];
  /** UIDs the index has and the file does not. */
  readonly vanished: readonly number[];
  /** next_uid after the sync. */
  readonly nextUid: number;
  /** Keywords the mailbox knows (index order, then X-IMAPbase's new ones). */
  readonly keywords: readonly string[];
}

export interface PlanInput {
  readonly state: IndexMapState;
  /** The index's messages (plus ones saved in this same transaction), uid order. */
  readonly indexed: readonly IndexedMessage[];
  readonly pending: PendingChanges;
  /** UIDs to expunge now. */
  readonly expunge: ReadonlySet<number>;
  readonly src: ByteSource;
  readonly messages: readonly MboxMessage[];
}


function sameSet(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((k) => s.has(k));
}

/** What planning one message needs of the whole sync. */
export interface MessagePlanContext {
  readonly indexed: readonly IndexedMessage[];
  readonly pending: PendingChanges;
  readonly expunge: ReadonlySet<number>;
  /** The mailbox's keywords (see SyncPlan.keywords), as a set. */
  readonly known: ReadonlySet<string>;
}

/** @returns the mailbox's keywords after the sync: the index's, then X-IMAPbase's new ones (`base`: the first message's). */
export function syncKeywords(state: IndexMapState, base: MboxMessage["imapBase"]): string[] {
  const keywords = [...state.keywords];
  for (const k of base?.keywords ?? []) if (!keywords.includes(k)) keywords.push(k);
  return keywords;
}

/** @returns the header MD5 of `msg`, computed on the first call only. */
export function lazyMd5(src: ByteSource, msg: MboxMessage): () => Uint8Array {
  let md5: Uint8Array | undefined;
  return () => (md5 ??= mboxHeaderMd5(headerBlock(src, msg)));
}

/** @returns the decision for file message `msg`, reconciled as `r` (see the module comment). */
export function planMessage(ctx: MessagePlanContext, msg: MboxMessage, r: ReconciledMessage, md5Of: () => Uint8Array): MessagePlan {
  if (msg.pseudo) return { msg, uid: 0, drop: false, flags: 0, keywords: [], recent: false, stale: false, lacking: false, fileWins: false };
  const { pending } = ctx;
  const fileKeywordsOk = msg.rawKeywords.every((k) => ctx.known.has(k));
  // No Set per message without keywords (nearly all): a first sync plans every message of the file.
  const fileKeywords = fileKeywordsOk && msg.rawKeywords.length > 0 ? [...new Set(msg.rawKeywords)] : NO_KEYWORDS;
  const fileFlags = msg.flags & MAIL_FLAGS_NONRECENT;
  const ix = r.indexPos >= 0 ? ctx.indexed[r.indexPos] : undefined;
  let flags = fileFlags;
  let kws: readonly string[] = fileKeywords;
  let stale = false;
  let fileWins = false;
  if (ix) {
    const indexWins = pending.flags === "all" || pending.flags.has(r.uid);
    const differs = (ix.flags & MAIL_FLAGS_NONRECENT) !== fileFlags || !sameSet(ix.keywords, fileKeywords);
    if (indexWins) {
      flags = ix.flags & MAIL_FLAGS_NONRECENT;
      kws = ix.keywords;
      stale = differs;
    } else fileWins = differs;
  }
  const lacking = r.needsUidHeader || !fileKeywordsOk;
  const drop = ctx.expunge.has(r.uid) || pending.expunges.has(r.uid);
  return {
    msg,
    uid: r.uid,
    ...(ix ? { indexed: ix } : {}),
    drop,
    flags,
    keywords: kws,
    recent: msg.recent,
    stale,
    lacking,
    fileWins,
    ...(lacking ? { md5: md5Of() } : {}),
  };
}

/** @returns what the reconciler needs of file message `msg`, the `first` of the file or not. */
export function uidInfoOf(msg: MboxMessage, first: boolean): FileMessageUidInfo {
  return { rawUid: msg.rawUid, pseudo: msg.pseudo, ...(first && msg.imapBase ? { imapBaseUidLast: msg.imapBase.uidLast } : {}) };
}

/** @returns the sync decisions for `input.messages` (see the module comment). */
export function planSync(input: PlanInput): SyncPlan {
  const { state, indexed, pending, messages, src } = input;
  const keywords = syncKeywords(state, messages[0]?.imapBase);
  const ctx: MessagePlanContext = { indexed, pending, expunge: input.expunge, known: new Set(keywords) };
  const reconciler = new MboxUidReconciler(indexed, state.header.nextUid);
  const plans = messages.map((msg, i) => {
    const md5Of = lazyMd5(src, msg);
    return planMessage(ctx, msg, reconciler.next(uidInfoOf(msg, i === 0), md5Of), md5Of);
  });
  const rec = reconciler.finish();
  return { messages: plans, vanished: rec.vanished.map((p) => indexed[p].uid), nextUid: rec.nextUid, keywords };
}
