import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStorage } from "../../../src/index.js";
import { loadState } from "../../../src/index-io/load-state.js";
import { heldIndexRowsFiles } from "../../../src/index-io/index-rows-file.js";
import { TransactionLog } from "../../../src/log/log.js";
import { readLog } from "../../../src/log/view.js";
import { IndexCorruptedError, LogPositionLostError } from "../../../src/shared/errors.js";
import { encodeIndexFile } from "../../../src/projections/index-file.js";

/*
 * A dovecot.index read lazily whose broken row the log cannot rebuild past
 * (the log rotated, .log.2 gone): what a whole read at open refused at once
 * is found later. It must fail the command or stream that finds it, never
 * the process, and never after a commit has landed. (Review lazy2c.)
 */
describe("lazy dovecot.index rows, a broken row and a log that no longer reaches back", () => {
  let dir: string;
  let location: string;
  let index: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-load-lazy-rotated-"));
    location = `mdbox:${dir}/mail`;
    index = path.join(dir, "mail", "mailboxes", "INBOX", "dbox-Mails", "dovecot.index");
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** 3,000 messages; `broken`: row 2900's uid set to 1, the log rotated and .log.2 removed. */
  async function store(broken: boolean): Promise<void> {
    const storage = openStorage(location);
    await storage.createMailbox("INBOX");
    const box = await storage.openMailbox("INBOX");
    const t = box.transaction();
    for (let i = 0; i < 3000; i++) t.append({ body: `Subject: m${i}\r\n\r\nbody ${i}\r\n` });
    await t.commit();
    await box.indexLogTail();
    await storage.close();
    if (!broken) return;
    const log = TransactionLog.open(index, { fsync: "never" });
    await log.rotate();
    await log.close();
    const bytes = Buffer.from(encodeIndexFile(loadState(index)));
    bytes.writeUInt32LE(1, bytes.readUInt32LE(4) + 2900 * bytes.readUInt32LE(8));
    fs.writeFileSync(index, bytes);
    fs.rmSync(index + ".log.2");
  }

  it("a subscriber's stream ends with the error when another process's change cannot be folded (the process lives on)", async () => {
    await store(true);
    const storage = openStorage(location);
    const box = await storage.openMailbox("INBOX");
    expect((await box.status(["messages"])).messages).toBe(3000);
    const failed = new Promise<unknown>((resolve) => {
      box.changes().subscribe({ error: resolve });
    });
    const other = TransactionLog.open(index, { fsync: "never" });
    await other.append([{ type: "flag-update", external: false, sync: false, updates: [{ uid1: 100, uid2: 100, addFlags: 8, removeFlags: 0, modseqIncFlag: 0 }] }]);
    await other.close();
    expect(await failed).toBeInstanceOf(IndexCorruptedError);
    await storage.close();
  });

  it("a flag commit with a subscriber fails before it lands, not after", async () => {
    await store(true);
    const before = readLog(index).transactions.length;
    const storage = openStorage(location);
    const box = await storage.openMailbox("INBOX");
    const sub = box.changes().subscribe({ error: () => undefined });
    await expect(box.transaction().flags([{ uid1: 100, uid2: 100 }], "add", ["\\Flagged"]).commit()).rejects.toBeInstanceOf(IndexCorruptedError);
    sub.unsubscribe();
    expect(readLog(index).transactions.length).toBe(before);
    await storage.close();
  });

  it("a flag commit without listeners on a sound file leaves the rows unread (the commit's result reads no row)", async () => {
    await store(false);
    const storage = openStorage(location);
    const box = await storage.openMailbox("INBOX");
    const held = heldIndexRowsFiles();
    const r = await box.transaction().flags([{ uid1: 100, uid2: 100 }], "add", ["\\Flagged"]).commit();
    expect(r.end).not.toEqual(r.start);
    expect(heldIndexRowsFiles()).toBe(held);
    await storage.close();
  });
});

describe("loadState's until before every file the log holds", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-load-until-lost-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("a log recreated at file_seq 2 and no dovecot.index: position 1:500 is lost (not an empty state)", async () => {
    const prefix = path.join(dir, "dovecot.index");
    const log = TransactionLog.open(prefix, { create: { fileSeq: 2, indexId: 1234 }, fsync: "never" });
    await log.append([{ type: "flag-update", external: false, sync: false, updates: [{ uid1: 1, uid2: 1, addFlags: 8, removeFlags: 0, modseqIncFlag: 0 }] }]);
    await log.close();
    expect(() => loadState(prefix, { until: { fileSeq: 1, offset: 500 } })).toThrow(LogPositionLostError);
    expect(loadState(prefix).header.indexId).toBe(1234);
  });
});
