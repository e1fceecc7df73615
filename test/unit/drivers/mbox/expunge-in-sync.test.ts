import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { expungeInSync } from "../../../../src/drivers/mbox/expunge-in-sync.js";
import type { PendingChanges } from "../../../../src/drivers/mbox/index-view.js";
import { openMboxFile, releaseMboxFile } from "../../../../src/drivers/mbox/mbox-file.js";
import { parseMbox } from "../../../../src/drivers/mbox/scan.js";
import { bufferSource } from "../../../../src/drivers/mbox/source.js";
import { mboxMessageText } from "../../../../src/drivers/mbox/text.js";
import type { LogRecord } from "../../../../src/log/types.js";
import { openStorage } from "../../../../src/index.js";
import type { IndexMapState } from "../../../../src/projections/state.js";
import { extRecEntries } from "../../../helpers/ext-rec-entries.js";

const body = (i: number) => `From: a${i}@b\nSubject: s${i}\nMessage-ID: <m${i}@x>\n\n${`line ${i}\n`.repeat(1 + (i % 7) * 40)}`;
const NOTHING_PENDING: PendingChanges = { flags: new Set(), expunges: new Set(), any: false };

/** uid → text of every message in the mbox, in file order. */
function messagesOf(file: string): Array<[number, string]> {
  const data = fs.readFileSync(file);
  return parseMbox(data).messages.map((m) => [m.uid, Buffer.from(mboxMessageText(bufferSource(data), m)).toString("latin1")]);
}

describe("mbox expunge from the index's offsets (expunge-in-sync.ts)", () => {
  let dir: string;
  let state: IndexMapState;
  const inbox = () => path.join(dir, "inbox");
  const COUNT = 30;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mbox-expunge-"));
    const storage = openStorage(`mbox:${dir}:INBOX=${dir}/inbox`);
    const box = await storage.openMailbox("INBOX");
    const tx = box.transaction();
    for (let i = 1; i <= COUNT; i++) tx.append({ body: body(i) });
    await tx.commit();
    state = await box.refresh();
    await storage.close();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function expunge(uids: number[]): Promise<LogRecord[] | undefined> {
    const file = openMboxFile(inbox(), path.join(dir, "redo"));
    const hold = await file.beginWrite({ timeoutMs: 100 });
    try {
      // Small windows: many writes, each handing padding on to the next.
      return expungeInSync(hold, state, NOTHING_PENDING, new Set(uids), { windowBytes: 3000 });
    } finally {
      await hold.end();
      releaseMboxFile(file);
    }
  }

  it("moves the messages after the expunged ones byte for byte and logs their new from offsets", async () => {
    const before = messagesOf(inbox());
    const records = await expunge([4, 17, 18, 30]);
    expect(records, "the index-driven path took it").toBeDefined();
    const after = messagesOf(inbox());
    expect(after).toEqual(before.filter(([uid]) => ![4, 17, 18, 30].includes(uid)));
    const offsets = records!.find((r): r is Extract<LogRecord, { type: "ext-rec" }> => r.type === "ext-rec")!;
    const scanned = new Map(parseMbox(fs.readFileSync(inbox())).messages.map((m) => [m.uid, m.fromOffset]));
    const entries = extRecEntries(offsets);
    expect(entries.map((u) => u.uid)).toEqual(before.map(([uid]) => uid).filter((uid) => uid > 4 && ![17, 18, 30].includes(uid)));
    for (const u of entries) expect(Number(Buffer.from(u.data).readBigUInt64LE(0)), `uid ${u.uid}`).toBe(scanned.get(u.uid));
    expect(records!.find((r) => r.type === "expunge-guid")).toMatchObject({ expunges: [4, 17, 18, 30].map((uid) => ({ uid })) });
  });

  it("leaves it to the full sync when a message is not what the index says (same size and mtime)", async () => {
    const data = fs.readFileSync(inbox());
    const at = data.indexOf("\nX-UID: 20\n");
    data.write("\nX-UID: 29\n", at, "latin1");
    const st = fs.statSync(inbox());
    fs.writeFileSync(inbox(), data);
    fs.utimesSync(inbox(), st.atime, st.mtime);
    const before = messagesOf(inbox());
    expect(await expunge([3, 25])).toBeUndefined();
    // Stopped before the window holding message 20 was written (message 3's was): whole messages, each once.
    expect(messagesOf(inbox()).map(([, text]) => text)).toEqual(before.map(([, text]) => text).filter((_, i) => i !== 2));
  });

  it("gives X-IMAPbase to the message that opens the file when the first one goes", async () => {
    const before = messagesOf(inbox());
    const base = parseMbox(fs.readFileSync(inbox())).imapBase;
    expect(await expunge([1, 2, 9])).toBeDefined();
    const parsed = parseMbox(fs.readFileSync(inbox()));
    expect(parsed.imapBase).toEqual(base);
    expect(parsed.messages[0].uid).toBe(3);
    expect(messagesOf(inbox())).toEqual(before.filter(([uid]) => ![1, 2, 9].includes(uid)));
  });

  it("leaves it to the full sync when every message goes (Dovecot's pseudo message), or flags are pending", async () => {
    expect(await expunge(Array.from({ length: COUNT }, (_, i) => i + 1))).toBeUndefined();
    const file = openMboxFile(inbox(), path.join(dir, "redo"));
    const hold = await file.beginWrite({ timeoutMs: 100 });
    try {
      expect(expungeInSync(hold, state, { flags: new Set([7]), expunges: new Set(), any: true }, new Set([5]))).toBeUndefined();
    } finally {
      await hold.end();
      releaseMboxFile(file);
    }
    expect(messagesOf(inbox()).length).toBe(COUNT);
  });
});
