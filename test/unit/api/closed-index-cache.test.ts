/**
 * A mailbox closed a moment ago is opened again from its kept state
 * (src/index-io/closed-index-cache.ts, Dovecot's index alloc cache): only
 * the log appended since is read, and the result is the state a fresh load
 * gives. A log that is no longer the one the state came from (the mailbox
 * deleted and created again by another process) is loaded from its files.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStorage, type Mailbox, type Storage } from "../../../src/index.js";

const FORMATS = ["sdbox", "mdbox", "maildir", "mbox"] as const;

/** What a client can see of a mailbox: header identity and counters, every message's uid and flags. */
function visible(box: Mailbox): unknown {
  const h = box.state.header;
  const rows: number[] = [];
  for (let i = 0; i < box.state.records.count; i++) {
    const row = box.state.records.row(i);
    rows.push(row.words[row.offset >>> 2], row.bytes[row.offset + 4]);
  }
  return { uidValidity: h.uidValidity, nextUid: h.nextUid, seen: h.seenMessagesCount, deleted: h.deletedMessagesCount, modseq: box.state.logModseq, rows };
}

async function append(box: Mailbox, n: number, flags: string[] = []): Promise<void> {
  const tx = box.transaction();
  for (let i = 0; i < n; i++) tx.append({ body: `Subject: ${i}\n\nbody ${i}\n`, flags });
  await tx.commit();
}

describe.each(FORMATS)("%s: reopening a mailbox closed a moment ago", (format) => {
  let dir: string;
  let location: string;
  let storage: Storage;
  let other: Storage;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "closed-index-"));
    location = `${format}:${dir}/mail`;
    storage = openStorage(location);
    other = openStorage(location);
  });

  afterEach(async () => {
    await storage.close();
    await other.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("comes back as the very state it closed with when nobody wrote meanwhile", async () => {
    const box = await storage.openMailbox("INBOX");
    await append(box, 5);
    const closedWith = box.state;
    await box.close();
    const again = await storage.openMailbox("INBOX");
    expect(again.state).toBe(closedWith);
    await again.close();
    // A fresh storage has nothing kept: it loads.
    const fresh = openStorage(location);
    try {
      expect((await fresh.openMailbox("INBOX")).state).not.toBe(closedWith);
    } finally {
      await fresh.close();
    }
  });

  it("reads only what others appended since, and ends where a fresh load does", async () => {
    const box = await storage.openMailbox("INBOX");
    await append(box, 50, ["\\Seen"]);
    await box.close();

    // Another process (here: another storage) appends and flags meanwhile.
    const theirs = await other.openMailbox("INBOX");
    await append(theirs, 3);
    await theirs.transaction().flags([{ uid1: 2, uid2: 4 }], "add", ["\\Deleted"]).commit();
    await theirs.close();

    const again = await storage.openMailbox("INBOX");
    const fresh = openStorage(location);
    try {
      const loaded = await fresh.openMailbox("INBOX");
      expect(visible(again)).toEqual(visible(loaded));
      expect(again.state.header.nextUid).toBe(54);
    } finally {
      await fresh.close();
    }
    // And it keeps working: a commit on the reopened mailbox lands after theirs.
    await again.transaction().flags([{ uid1: 53, uid2: 53 }], "add", ["\\Flagged"]).commit();
    await again.close();
    const check = await other.openMailbox("INBOX");
    expect(visible(check)).toEqual(visible(await storage.openMailbox("INBOX")));
  });

  it("loads from the files when the mailbox was deleted and created again elsewhere", async () => {
    await storage.createMailbox("Box");
    const box = await storage.openMailbox("Box");
    await append(box, 2);
    const oldValidity = box.uidValidity;
    await box.close();

    await other.deleteMailbox("Box");
    await other.createMailbox("Box", { uidValidity: oldValidity + 1 });
    const theirs = await other.openMailbox("Box");
    // Longer than the old log: its size alone does not tell them apart.
    await append(theirs, 20);
    await theirs.close();

    const again = await storage.openMailbox("Box");
    expect(again.uidValidity).toBe(oldValidity + 1);
    expect(again.state.records.count).toBe(20);
    expect(again.state.header.nextUid).toBe(21);
  });
});
