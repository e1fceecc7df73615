/**
 * What the engine and what doveadm see of a mailbox, in the same shape, for
 * interop tests to compare: uid, flags then keywords (sorted, no \Recent),
 * GUID, text, and with `modseq` the per-message modseq.
 */
import { flagNames, messageCount, recordAt, type Storage } from "../../src/index.js";
import type { DovecotOracle } from "./dovecot.js";

export interface SeenMessage {
  uid: number;
  flags: string[];
  guid: string;
  text: string;
  modseq?: string;
}

export interface FetchCompareOptions {
  modseq?: boolean;
}

export async function engineFetch(storage: Storage, mailbox: string, opts: FetchCompareOptions = {}): Promise<SeenMessage[]> {
  const box = await storage.openMailbox(mailbox);
  try {
    const state = await box.refresh();
    const out: SeenMessage[] = [];
    for (let seq = 1; seq <= messageCount(state); seq++) {
      const r = recordAt(state, seq)!;
      const info = await box.backend.messageInfo(state, r.uid);
      out.push({
        uid: r.uid,
        flags: [...flagNames(r.flags), ...r.keywords].sort(),
        guid: info.guid,
        text: Buffer.from(await box.readMessage(r.uid)).toString("latin1"),
        ...(opts.modseq ? { modseq: String(r.modseq) } : {}),
      });
    }
    return out;
  } finally {
    await box.close();
  }
}

/** `doveadm fetch 'uid flags guid [modseq]'` and `fetch text`. */
export async function doveadmFetch(o: DovecotOracle, mailbox: string, opts: FetchCompareOptions = {}): Promise<SeenMessage[]> {
  const rows = await o.fetch(opts.modseq ? "uid flags guid modseq" : "uid flags guid", ["mailbox", mailbox, "all"]);
  const out: SeenMessage[] = [];
  for (const r of rows) {
    out.push({
      uid: Number(r.uid),
      flags: r.flags.split(" ").filter((f) => f && f !== "\\Recent").sort(),
      guid: r.guid,
      text: (await o.fetchText(mailbox, Number(r.uid))).toString("latin1"),
      ...(opts.modseq ? { modseq: r.modseq } : {}),
    });
  }
  return out;
}
