/**
 * MailboxTransaction logs a flag or keyword change only for the messages it
 * changes (Dovecot's rule; test/interop/noop-flags.test.ts checks the records
 * against doveadm's). Here: the records themselves, and operations of one
 * transaction that depend on each other.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { flagNames, lookupUid, openStorage, readLog, type LogPosition, type LogRecord, type Mailbox, type Storage } from "../../../src/index.js";

let dir: string;
let storage: Storage;
let box: Mailbox;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-noop-flags-"));
  storage = openStorage(`sdbox:${dir}/mail`);
  box = await storage.openMailbox("INBOX");
  const tx = box.transaction();
  const initial = [["\\Seen"], ["\\Seen", "Foo"], ["Foo"], [], ["\\Flagged", "bar"]];
  initial.forEach((flags, i) => tx.append({ body: `Subject: ${i + 1}\n\nbody\n`, flags }));
  await tx.commit();
});

afterEach(async () => {
  await storage.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Flag and keyword records logged since `from`, compactly. */
function flagRecordsSince(from: LogPosition): string[] {
  const out: string[] = [];
  for (const tx of readLog(box.backend.indexPrefix, from).transactions) {
    for (const { record } of tx.entries) out.push(...describe(record));
  }
  return out;
}

function describe(r: LogRecord): string[] {
  const ranges = (rs: ReadonlyArray<{ uid1: number; uid2: number }>) => rs.map((x) => (x.uid1 === x.uid2 ? `${x.uid1}` : `${x.uid1}-${x.uid2}`)).join(",");
  switch (r.type) {
    case "flag-update":
      return [`flags ${ranges(r.updates)} +${r.updates[0].addFlags.toString(16)}-${r.updates[0].removeFlags.toString(16)}`];
    case "keyword-update":
      return [`${r.modifyType} ${r.name} ${ranges(r.ranges)}`];
    case "keyword-reset":
      return [`reset ${ranges(r.ranges)}`];
    default:
      return [];
  }
}

function flagsOf(uid: number): string[] {
  const r = lookupUid(box.state, uid)!;
  return [...flagNames(r.flags), ...r.keywords];
}

const ALL = [{ uid1: 1, uid2: 0xffffffff }];

it("adding a flag some messages have logs only the others", async () => {
  const from = box.position;
  const modseq = box.state.logModseq;
  await box.transaction().flags(ALL, "add", ["\\Seen"]).commit();
  expect(flagRecordsSince(from)).toEqual(["flags 3-5 +8-0"]);
  // Per-message modseqs need the modseq extension, which only Dovecot
  // enables (the interop test compares them); the log's grows by one record.
  expect(box.state.logModseq).toBe(modseq + 1n);
});

it("removing a flag some messages have logs only those; adding one, only the messages without it", async () => {
  const from = box.position;
  await box.transaction().flags(ALL, "remove", ["\\Seen"]).commit();
  await box.transaction().flags([{ uid1: 2, uid2: 5 }], "add", ["\\Flagged"]).commit();
  expect(flagRecordsSince(from)).toEqual(["flags 1-2 +0-8", "flags 2-4 +2-0"]);
});

it("a change that changes nothing appends nothing and returns the current position", async () => {
  const from = box.position;
  const modseq = box.state.logModseq;
  const result = await box.transaction().flags([{ uid1: 1, uid2: 2 }], "add", ["\\Seen"]).flags(ALL, "remove", ["nobody", "\\Draft"]).flags([{ uid1: 3, uid2: 3 }], "replace", ["foo"]).commit();
  expect(result.start).toEqual(from);
  expect(result.end).toEqual(from);
  expect(box.position).toEqual(from);
  expect(box.state.logModseq).toBe(modseq);
  expect(flagRecordsSince(from)).toEqual([]);
});

it("keyword add and remove: the whole requested set for each message it changes, names matched case-insensitively", async () => {
  const from = box.position;
  // 2 and 3 have Foo (matched as FOO, logged as the mailbox spells it), none has new; 5 has bar.
  await box.transaction().flags([{ uid1: 2, uid2: 4 }], "add", ["FOO", "foo", "new"]).commit();
  await box.transaction().flags(ALL, "remove", ["bar", "gone"]).commit();
  expect(flagRecordsSince(from)).toEqual(["add Foo 2-4", "add new 2-4", "remove bar 5", "remove gone 5"]);
  expect(flagsOf(4)).toEqual(["Foo", "new"]);
  expect(box.state.keywords).toEqual(["Foo", "bar", "new", "gone"]);
});

it("replace: no keyword reset; per-keyword removes where there is something to remove; exact matches skipped", async () => {
  const from = box.position;
  await box.transaction().flags(ALL, "replace", ["\\Seen", "foo"]).commit();
  // Flags: 1 and 2 have exactly \Seen. Keywords: 2 and 3 have exactly Foo; 5 loses bar.
  expect(flagRecordsSince(from)).toEqual(["flags 3-5 +8-17", "add Foo 1,4-5", "remove bar 5"]);
  for (let uid = 1; uid <= 5; uid++) expect(flagsOf(uid)).toEqual(["\\Seen", "Foo"]);
});

it("later operations of one transaction see what earlier ones did", async () => {
  const from = box.position;
  await box.transaction()
    .flags([{ uid1: 4, uid2: 4 }], "add", ["\\Seen", "x"])
    .flags([{ uid1: 4, uid2: 4 }], "remove", ["\\Seen", "x"])
    .flags([{ uid1: 3, uid2: 4 }], "add", ["x"])
    .flags([{ uid1: 3, uid2: 4 }], "add", ["X"])
    .expunge([{ uid1: 1, uid2: 1 }])
    .flags([{ uid1: 1, uid2: 2 }], "add", ["\\Answered"])
    .commit();
  expect(flagRecordsSince(from)).toEqual(["flags 4 +8-0", "add x 4", "flags 4 +0-8", "remove x 4", "add x 3-4", "flags 2 +1-0"]);
  expect(flagsOf(4)).toEqual(["x"]);
  expect(lookupUid(box.state, 1)).toBeUndefined();
});

it("keywords registered by appends in the same transaction keep their order", async () => {
  const from = box.position;
  await box.transaction().append({ body: "Subject: 6\n\nbody\n", flags: ["zeta"] }).flags([{ uid1: 4, uid2: 4 }], "replace", ["alpha", "ZETA"]).commit();
  expect(flagRecordsSince(from).filter((r) => !r.startsWith("add zeta 6"))).toEqual(["add zeta 4", "add alpha 4"]);
  expect(box.state.keywords).toEqual(["Foo", "bar", "zeta", "alpha"]);
});
