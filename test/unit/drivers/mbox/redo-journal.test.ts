import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openMboxFile, releaseMboxFile } from "../../../../src/drivers/mbox/mbox-file.js";
import { PAGE_BYTES, RedoJournal, decodeRedoRecord, encodeRedoRecord, recoverRedoJournal } from "../../../../src/drivers/mbox/redo-journal.js";

/** A pid no process has (above any pid_max), so a lock naming it is a dead writer's. */
const DEAD_PID = 2147483646;

describe("mbox redo journal", () => {
  let dir: string;
  let target: string;
  let journal: string;
  let fd: number;
  const old = Buffer.alloc(5 * PAGE_BYTES, "o");
  const data = Buffer.alloc(3 * PAGE_BYTES, "n");
  const at = PAGE_BYTES / 2;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "redo-"));
    target = path.join(dir, "inbox");
    journal = path.join(dir, "journal");
    fs.writeFileSync(target, old);
    fd = fs.openSync(target, "r+");
  });
  afterEach(() => {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** What the target holds once `data` is written at `at` (and cut at `cut`). */
  function after(cut?: number): Buffer {
    const b = Buffer.from(old);
    data.copy(b, at);
    return cut === undefined ? b : b.subarray(0, cut);
  }

  /** The state a SIGKILL in the middle of the mbox write leaves: the whole record, and part of the data. */
  function tornAt(owner: string, pages: number, truncateTo?: number): void {
    fs.writeFileSync(journal, encodeRedoRecord({ owner, offset: at, data, truncateTo }));
    fs.writeSync(fd, data, 0, pages * PAGE_BYTES - at, at);
  }

  it("records a write that spans pages, and voids the record once it is done", () => {
    const j = new RedoJournal(journal, "me", false);
    j.write(fd, data, at, 4 * PAGE_BYTES);
    expect(fs.readFileSync(target).equals(after(4 * PAGE_BYTES))).toBe(true);
    expect(decodeRedoRecord(fs.readFileSync(journal))).toBeUndefined();
    // A shorter record over a longer one: what follows it is ignored.
    j.write(fd, data.subarray(0, PAGE_BYTES + 1), 0);
    j.close();
    const left = fs.readFileSync(journal);
    expect(left.length).toBeGreaterThan(PAGE_BYTES + 1);
    left.set(encodeRedoRecord({ owner: "me", offset: 0, data: data.subarray(0, PAGE_BYTES + 1), truncateTo: undefined }), 0);
    expect(decodeRedoRecord(left)?.data.length).toBe(PAGE_BYTES + 1);
  });

  it("keeps a finished write's record for the next journaled write to replace, voiding it before a write it does not cover", () => {
    const j = new RedoJournal(journal, "me", false);
    j.write(fd, data, at, undefined, true);
    expect(decodeRedoRecord(fs.readFileSync(journal))?.offset).toBe(at);
    j.write(fd, data.subarray(0, PAGE_BYTES + 1), 0, undefined, true);
    expect(decodeRedoRecord(fs.readFileSync(journal))?.offset).toBe(0);
    // A replay of the kept record would undo this one: it goes first.
    j.write(fd, Buffer.from("abc"), PAGE_BYTES - 3);
    expect(decodeRedoRecord(fs.readFileSync(journal))).toBeUndefined();
    j.write(fd, data, at, undefined, true);
    j.settle();
    expect(decodeRedoRecord(fs.readFileSync(journal))).toBeUndefined();
    j.write(fd, data, at, undefined, true);
    j.close();
    expect(decodeRedoRecord(fs.readFileSync(journal)), "close() settles").toBeUndefined();
  });

  it("writes inside one page directly: such a write cannot be torn", () => {
    const j = new RedoJournal(journal, "me", false);
    j.write(fd, Buffer.from("abc"), PAGE_BYTES - 3);
    j.close();
    expect(fs.existsSync(journal)).toBe(false);
    expect(fs.readFileSync(target).subarray(PAGE_BYTES - 3, PAGE_BYTES).toString()).toBe("abc");
  });

  it("replays a torn write for the writer that broke its owner's lock, once", () => {
    tornAt("dead#1", 1, 4 * PAGE_BYTES);
    expect(recoverRedoJournal(journal, fd, "dead#1", true)).toBe(true);
    expect(fs.readFileSync(target).equals(after(4 * PAGE_BYTES))).toBe(true);
    expect(fs.statSync(journal).size).toBe(0);
    expect(recoverRedoJournal(journal, fd, "dead#1", true)).toBe(false);
  });

  it("replays a record with a SHA-1 (MSREDO01: Node before 20.15, earlier versions) too", () => {
    fs.writeFileSync(journal, encodeRedoRecord({ owner: "dead#1", offset: at, data, truncateTo: undefined }, "sha1"));
    fs.writeSync(fd, data, 0, PAGE_BYTES - at, at);
    expect(recoverRedoJournal(journal, fd, "dead#1", false)).toBe(true);
    expect(fs.readFileSync(target).equals(after())).toBe(true);
  });

  it("drops a record whose owner's lock another program broke (it may have written since), and a torn record", () => {
    tornAt("dead#1", 1);
    const torn = fs.readFileSync(target);
    expect(recoverRedoJournal(journal, fd, undefined, false)).toBe(false);
    expect(recoverRedoJournal(journal, fd, "other#2", false)).toBe(false);
    const record = encodeRedoRecord({ owner: "dead#1", offset: at, data, truncateTo: undefined });
    fs.writeFileSync(journal, record.subarray(0, record.length - 1));
    expect(recoverRedoJournal(journal, fd, "dead#1", false)).toBe(false);
    expect(fs.readFileSync(target).equals(torn)).toBe(true);
    expect(fs.statSync(journal).size).toBe(0);
  });

  it("decodes only whole records: any cut or flipped byte is no record", () => {
    const record = encodeRedoRecord({ owner: "p:h#9", offset: 2 ** 40, data: Buffer.from("xyz"), truncateTo: 7 });
    expect(decodeRedoRecord(record)).toEqual({ owner: "p:h#9", offset: 2 ** 40, data: Buffer.from("xyz"), truncateTo: 7 });
    for (let i = 0; i < record.length; i++) {
      expect(decodeRedoRecord(record.subarray(0, i)), `cut at ${i}`).toBeUndefined();
      const flipped = Buffer.from(record);
      flipped[i] ^= 0x20;
      expect(decodeRedoRecord(flipped), `byte ${i} flipped`).toBeUndefined();
    }
  });

  it("a write hold that breaks a dead writer's dotlock finishes that writer's torn write before anything reads the file", async () => {
    const lockContent = `${DEAD_PID}:${os.hostname()}`;
    fs.writeFileSync(`${target}.lock`, lockContent);
    tornAt(`${lockContent}#${fs.statSync(`${target}.lock`).ino}`, 2);
    const mbox = openMboxFile(target, journal);
    const hold = await mbox.beginWrite({ timeoutMs: 100 });
    try {
      expect(hold.recovered).toBe(true);
      expect(fs.readFileSync(target).equals(after())).toBe(true);
    } finally {
      await hold.end();
      releaseMboxFile(mbox);
    }
  });
});
