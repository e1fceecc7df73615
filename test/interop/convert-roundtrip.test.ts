/**
 * Conversion round trip through every format, in the order
 * mbox → mdbox → Maildir → sdbox → mbox: Dovecot writes the first mbox; after every hop
 * each mailbox has the same messages, byte for byte, with the same flags,
 * keywords and received times, and UIDs (gaps included);
 * doveadm reads the last mbox the same as the first.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { importMailboxes } from "../../src/convert/import.js";
import { openStorage, flagNames, messageCount, recordAt, type Storage } from "../../src/index.js";
import { createOracle, describeInterop, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";

interface Snapshot {
  uid: number;
  flags: string[];
  text: string;
  received: number;
}

async function snapshot(storage: Storage): Promise<Record<string, Snapshot[]>> {
  const out: Record<string, Snapshot[]> = {};
  for (const name of await storage.listMailboxes()) {
    const box = await storage.openMailbox(name);
    const state = await box.refresh();
    const rows: Snapshot[] = [];
    for (let seq = 1; seq <= messageCount(state); seq++) {
      const r = recordAt(state, seq)!;
      const info = await box.backend.messageInfo(state, r.uid);
      rows.push({ uid: r.uid, flags: [...flagNames(r.flags & 0x1f), ...r.keywords].sort(), text: Buffer.from(await box.readMessage(r.uid)).toString("latin1"), received: info.receivedTime });
    }
    out[name] = rows;
    await box.close();
  }
  return out;
}

const CHAIN = ["mdbox", "maildir", "sdbox", "mbox"] as const;
const BODIES = [
  sampleMessage(1, { body: "From the start of a line\n>From quoted\n>>From twice\nFrom someone@example.com Thu Nov 29 22:33:52 2001\nend\n" }),
  sampleMessage(2, { headers: ["X-Long: a", " continued header line", "Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000"] }),
  sampleMessage(3, { body: "line with trailing spaces   \n\n\nthree empty lines above\n" }),
  sampleMessage(4, { minSize: 40_000 }),
  sampleMessage(5, { body: "\u00e9t\u00e9 \u2603 utf-8\n" }),
];

describeInterop("conversion round trip mbox → mdbox → Maildir → sdbox → mbox", () => {
  let first: DovecotOracle;
  let last: DovecotOracle;
  let scratch: string;
  beforeEach(() => {
    first = createOracle("mbox");
    last = createOracle("mbox");
    scratch = fs.mkdtempSync(path.join(first.dir, "hops-"));
  });
  afterEach(async () => {
    await first.cleanup();
    await last.cleanup();
  });

  it("keeps every body byte for byte, every flag and keyword, received times and UIDs", async () => {
    await first.mailboxCreate("Sub/Child");
    for (let i = 0; i < BODIES.length; i++) await first.save("INBOX", BODIES[i]);
    for (let i = 0; i < 3; i++) await first.save("Sub/Child", sampleMessage(10 + i));
    await first.flags("add", "\\Seen $Label1 project-x", "mailbox INBOX uid 1:2");
    await first.flags("add", "\\Answered \\Flagged \\Draft \\Deleted", "mailbox INBOX uid 4");
    await first.flags("add", "\\Seen", "mailbox Sub/Child uid 2");
    await first.expunge("mailbox INBOX uid 3");

    let source = openStorage(first.location);
    const original = await snapshot(source);
    expect(Object.keys(original).sort()).toEqual(["INBOX", "Sub/Child"]);
    expect(original.INBOX.map((m) => m.uid)).toEqual([1, 2, 4, 5]);

    const hops: string[] = ["mbox"];
    for (const format of CHAIN) {
      const location = format === "mbox" ? last.location : `${format}:${path.join(scratch, format)}`;
      const target = openStorage(location);
      const imported = await importMailboxes(source, target);
      expect(imported.map((m) => m.name).sort()).toEqual(["INBOX", "Sub/Child"]);
      await source.close();
      source = target;
      hops.push(format);
      const now = await snapshot(target);
      for (const name of Object.keys(original)) {
        // UIDs too, the gap (uid 3 expunged) included: every target mailbox is new.
        expect(now[name], `${hops.join(" → ")}: ${name}`).toEqual(original[name]);
        expect(imported.find((m) => m.name === name)).toMatchObject({ uidsKept: true, uidValidityKept: true });
      }
    }
    await source.close();
    console.log(`conversion round trip through: ${hops.join(" → ")}`);
    expect(hops).toEqual(["mbox", ...CHAIN]);

    // doveadm reads the final mbox as it read the first.
    await last.chownRoot();
    for (const name of ["INBOX", "Sub/Child"]) {
      const a = await first.fetch("flags", ["mailbox", name, "all"]);
      const b = await last.fetch("flags", ["mailbox", name, "all"]);
      expect(b.map((r) => r.flags.split(" ").sort())).toEqual(a.map((r) => r.flags.split(" ").sort()));
      const uids = (await last.fetch("uid", ["mailbox", name, "all"])).map((r) => Number(r.uid));
      const theirs = await Promise.all(uids.map((u) => last.fetchText(name, u)));
      expect(theirs.map((t) => t.toString("latin1"))).toEqual(original[name].map((m) => m.text));
    }
    first.assertNoStderrProblems();
    last.assertNoStderrProblems();
  });
});
