/**
 * The writer's own checkpoint rule (writer.ts REWRITE_MIN_FOLD_ROWS): a flag
 * change of 4,096 rows or more rewrites dovecot.index at once, where
 * Dovecot's byte rules would leave it to be refolded at every open. The
 * dovecot.index so written must be one Dovecot reads and works on: doveadm's
 * flags and status agree with ours, and each side reads what the other
 * changes after it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, expect, it } from "vitest";
import { openStorage, type Storage } from "../../src/index.js";
import { readCheckpoint } from "../../src/index-io/checkpoint-file.js";
import { position } from "../../src/projections/read.js";
import { createOracle, describeInterop, type DovecotOracle } from "../helpers/dovecot.js";

const MESSAGES = 5000;

describeInterop("dovecot.index rewritten after a flag change of many rows", () => {
  let o: DovecotOracle | undefined;
  let storage: Storage | undefined;
  afterEach(async () => {
    await storage?.close();
    await o?.cleanup();
  });

  it("mdbox: flag all by the engine writes dovecot.index at once; doveadm reads it and works on, and the engine reads doveadm's changes", async () => {
    o = createOracle("mdbox");
    storage = openStorage(o.location);
    const box = await storage.openMailbox("INBOX");
    const tx = box.transaction();
    for (let i = 1; i <= MESSAGES; i++) tx.append({ body: `Subject: m${i}\n\nbody ${i}\n` });
    await tx.commit();
    const prefix = path.join(o.mailboxIndexDir("INBOX"), "dovecot.index");
    const before = fs.existsSync(prefix) ? position(readCheckpoint(prefix)!) : undefined;

    await box.transaction().flags([{ uid1: 1, uid2: 0xffffffff }], "add", ["\\Seen"]).commit();
    const written = readCheckpoint(prefix)!;
    expect(position(written)).not.toEqual(before);
    expect(position(written)).toEqual(position(box.state));
    expect(written.header.seenMessagesCount).toBe(MESSAGES);
    await box.close();

    await o.chownRoot();
    expect(await o.mailboxStatus("messages unseen", "INBOX")).toMatchObject({ messages: String(MESSAGES), unseen: "0" });
    const seen = await o.fetch("uid flags", ["mailbox", "INBOX", "uid", "1,2500,5000"]);
    expect(seen.map((m) => m.flags.split(" ").filter((f) => f !== "\\Recent"))).toEqual([["\\Seen"], ["\\Seen"], ["\\Seen"]]);

    // Dovecot works on over it; the engine reads what it wrote.
    await o.flags("remove", "\\Seen", ["mailbox", "INBOX", "uid", "10:19"]);
    const again = await storage.openMailbox("INBOX");
    expect((await again.status(["unseen"])).unseen).toBe(10);
    await again.close();
    o.assertNoStderrProblems();
  }, 120_000);
});
