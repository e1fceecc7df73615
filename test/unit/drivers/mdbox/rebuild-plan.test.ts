import { describe, expect, it } from "vitest";
import type { MailboxMessageRef, MailboxSnapshot } from "../../../../src/drivers/mdbox/mailbox-refs.js";
import type { MapEntry } from "../../../../src/projections/mdbox-map-view.js";
import { MessageIndex, planMailboxes, planMap as planMapOf, type MapPlan } from "../../../../src/drivers/mdbox/rebuild-plan.js";
import { FoundMessages } from "../../../../src/drivers/mdbox/found-messages.js";

const guid = (n: number) => Uint8Array.from({ length: 16 }, (_, i) => (i === 15 ? n : 0xa0));
const guidKey = (n: number) => Buffer.from(guid(n)).toString("hex");
interface Found { fileId: number; offset: number; g: number; orig?: string }
const found = (fileId: number, offset: number, g: number, orig?: string): Found => ({ fileId, offset, g, orig });
const entry = (mapUid: number, fileId: number, offset: number, refcount: number): MapEntry => ({ mapUid, fileId, offset, size: 100, refcount });

/** planMap over `msgs` (in the columns a scan fills) and map `entries`. */
function planMap(msgs: Found[], entries: MapEntry[], nextMapUid: number): MapPlan {
  const columns = new FoundMessages();
  for (const m of msgs) {
    columns.guids.set(guid(m.g), columns.nextGuidAt());
    columns.add(m.fileId, false, m.offset, 100, m.orig === undefined ? -1 : columns.mailboxIndex(m.orig));
  }
  return planMapOf(columns, (visit) => entries.forEach(visit), nextMapUid);
}

/** The placed messages as [fileId, mapUid, seenZero, duplicate] per message. */
const placedRows = (plan: MapPlan) => Array.from({ length: plan.placed.count }, (_, i) => ({
  fileId: plan.placed.found.fileIds[i], mapUid: plan.placed.mapUids[i], seenZero: plan.placed.seenZero(i), duplicate: plan.placed.duplicate(i),
}));
/** refcounts as [mapUid, count] pairs in found order. */
const refcountPairs = (plan: MapPlan, refcounts: Uint32Array) => [...refcounts].map((n, i) => [plan.placed.mapUids[i], n]);
const ref = (uid: number, mapUid: number, g: number | undefined): MailboxMessageRef => ({
  uid, flags: 0, keywords: [], mapUid, saveDate: 5, guid128: g === undefined ? new Uint8Array(16) : guid(g),
});
const snapshot = (name: string, messages: MailboxMessageRef[], mapUidValidity = 77, source: MailboxSnapshot["source"] = "log"): MailboxSnapshot => ({
  name, dir: `/x/${name}`, prefix: `/x/${name}/dovecot.index`, source, state: undefined,
  header: { mapUidValidity, mailboxGuid: guid(99), flags: 0 }, messages,
});

describe("rebuild planning", () => {
  it("keeps map records that match a found message, expunges the rest, numbers new ones after next_uid", () => {
    const msgs = [found(1, 16, 1), found(1, 116, 2), found(2, 16, 3)];
    const plan = planMap(msgs, [entry(1, 1, 16, 1), entry(2, 1, 999, 1), entry(3, 2, 16, 0)], 10);
    expect(plan.expunge).toEqual([2]);
    expect(placedRows(plan).map((p) => [p.mapUid, p.seenZero])).toEqual([[1, false], [10, false], [3, true]]);
    expect(plan.append.map((i) => plan.placed.mapUids[i])).toEqual([10]);
  });

  it("a second message with the same GUID gets refcount 0, the first is the one mailboxes point at", () => {
    const plan = planMap([found(1, 16, 1), found(2, 16, 1)], [], 1);
    const index = new MessageIndex(plan);
    expect(placedRows(plan).map((p) => p.duplicate)).toEqual([false, true]);
    const { refcounts, mailboxes } = planMailboxes(index, plan.placed, [snapshot("INBOX", [ref(1, 2, 1)])], 77, (o) => o ?? "INBOX");
    expect(mailboxes[0].kept.map((k) => plan.placed.mapUids[k.msg])).toEqual([1]);
    expect(refcountPairs(plan, refcounts)).toEqual([[1, 1], [2, 0]]);
  });

  it("matches records by GUID, by map uid only when the mailbox names this map, and drops the rest", () => {
    const plan = planMap([found(1, 16, 1), found(1, 116, 2)], [entry(5, 1, 116, 1)], 6);
    const index = new MessageIndex(plan);
    const refs = [ref(1, 99, 1), ref(2, 5, undefined), ref(3, 42, undefined)];
    const trusted = planMailboxes(index, plan.placed, [snapshot("A", refs, 77)], 77, () => "INBOX");
    expect(trusted.mailboxes[0].kept.map((k) => [k.ref.uid, plan.placed.mapUids[k.msg]])).toEqual([[1, 6], [2, 5]]);
    const untrusted = planMailboxes(index, plan.placed, [snapshot("A", refs, 12)], 77, () => "INBOX");
    expect(untrusted.mailboxes[0].kept.map((k) => k.ref.uid)).toEqual([1]);
    // message 2 is then unreferenced and not known deleted: it goes back to INBOX
    expect(untrusted.mailboxes.find((m) => m.name === "INBOX")!.restore.map((i) => plan.placed.mapUids[i])).toEqual([5]);
  });

  it("puts unreferenced messages back into their original mailbox, but not ones the old map had as deleted", () => {
    const msgs = [found(1, 16, 1, "Work"), found(1, 116, 2), found(1, 216, 3, "Work")];
    const plan = planMap(msgs, [entry(3, 1, 216, 0)], 4);
    const { mailboxes, refcounts } = planMailboxes(new MessageIndex(plan), plan.placed, [snapshot("INBOX", [])], 77, (o) => o ?? "INBOX");
    expect(mailboxes.map((m) => [m.name, m.recreate, m.restore.map((i) => plan.placed.found.guidHex(i).slice(-2))])).toEqual([
      ["INBOX", false, ["02"]],
      ["Work", true, ["01"]],
    ]);
    expect(refcounts[2]).toBe(0);
  });

  it("an unreadable mailbox (read from its backup) is recreated with the records found", () => {
    const plan = planMap([found(1, 16, 1)], [], 1);
    const { mailboxes } = planMailboxes(new MessageIndex(plan), plan.placed, [snapshot("INBOX", [ref(7, 1, 1)], 77, "backup")], 77, () => "INBOX");
    expect(mailboxes[0]).toMatchObject({ recreate: true });
    expect(mailboxes[0].kept.map((k) => k.ref.uid)).toEqual([7]);
  });

  it("a backup's record of a message the old map had at refcount 0 stays expunged; a log's record brings it back", () => {
    const plan = planMap([found(1, 16, 1), found(1, 116, 2)], [entry(1, 1, 16, 1), entry(2, 1, 116, 0)], 3);
    const refs = [ref(1, 1, 1), ref(2, 2, 2)];
    const fromBackup = planMailboxes(new MessageIndex(plan), plan.placed, [snapshot("INBOX", refs, 77, "backup")], 77, () => "INBOX");
    expect(fromBackup.mailboxes[0].kept.map((k) => k.ref.uid)).toEqual([1]);
    expect(fromBackup.mailboxes[0].restore).toEqual([]);
    expect(fromBackup.refcounts[1]).toBe(0);
    const fromLog = planMailboxes(new MessageIndex(plan), plan.placed, [snapshot("INBOX", refs, 77, "log")], 77, () => "INBOX");
    expect(fromLog.mailboxes[0].kept.map((k) => k.ref.uid)).toEqual([1, 2]);
    expect(fromLog.refcounts[1]).toBe(1);
  });

  it("of two copies of one GUID, the one a map record points at is kept, even when the other comes first", () => {
    // m.1 is a purged file whose unlink a kill undid: the map knows only the copy in m.2.
    const plan = planMap([found(1, 16, 1), found(2, 16, 1)], [entry(4, 2, 16, 1)], 5);
    expect(placedRows(plan).map((p) => [p.fileId, p.mapUid, p.duplicate])).toEqual([[1, 5, true], [2, 4, false]]);
    const { refcounts } = planMailboxes(new MessageIndex(plan), plan.placed, [snapshot("INBOX", [ref(1, 4, 1)])], 77, () => "INBOX");
    expect(refcountPairs(plan, refcounts)).toEqual([[5, 0], [4, 1]]);
  });

  it("a message a mailbox log shows expunged (by GUID) is not put back", () => {
    const plan = planMap([found(1, 16, 1), found(1, 116, 2)], [], 1);
    const index = new MessageIndex(plan);
    const expunged = new Set([guidKey(1)]);
    const { mailboxes } = planMailboxes(index, plan.placed, [snapshot("INBOX", [])], 77, () => "INBOX", expunged);
    expect(mailboxes[0].restore.map((i) => plan.placed.found.guidHex(i).slice(-2))).toEqual(["02"]);
  });

  it("a message the map still counts goes back though a log expunged its GUID (a copy elsewhere, whose index is lost)", () => {
    const plan = planMap([found(1, 16, 1)], [entry(3, 1, 16, 1)], 4);
    const expunged = new Set([guidKey(1)]);
    const { mailboxes } = planMailboxes(new MessageIndex(plan), plan.placed, [snapshot("INBOX", [])], 77, () => "INBOX", expunged);
    expect(mailboxes[0].restore.map((i) => plan.placed.mapUids[i])).toEqual([3]);
  });
});
