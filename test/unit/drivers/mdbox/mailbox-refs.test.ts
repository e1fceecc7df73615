import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { countReferences, referencedMapUidsInLogs, messageRefs, snapshotAllMailboxes } from "../../../../src/drivers/mdbox/mailbox-refs.js";
import { decodeMdboxRecord, GUID_EXT_NAME, MDBOX_EXT_NAME } from "../../../../src/drivers/mdbox/mailbox-format.js";
import { MdboxPaths } from "../../../../src/drivers/mdbox/paths.js";
import { loadState } from "../../../../src/index-io/load-state.js";
import { recordAt } from "../../../../src/projections/read.js";
import { openStorage, type Storage } from "../../../../src/index.js";
import { ClosedIndexCache } from "../../../../src/index-io/closed-index-cache.js";
import { appendRecords, writeMailbox } from "../../../../src/drivers/mdbox/mailbox-writer.js";

/** messageRefs and referencedMapUidsInLogs read rows in place; these compare them with the record-by-record reading. */
let root: string;
let storage: Storage;
const msg = (i: number) => `Subject: ${i}\n\nbody ${i}\n`;

beforeEach(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "mdbox-refs-"));
  storage = openStorage(`mdbox:${root}`, { fsync: "never" });
  await storage.createMailbox("Other");
  const inbox = await storage.openMailbox("INBOX");
  const tx = inbox.transaction();
  for (let i = 1; i <= 6; i++) tx.append({ body: msg(i) });
  await tx.commit();
  await inbox.transaction().flags([{ uid1: 2, uid2: 4 }], "add", ["\\Seen", "$Label1"]).commit();
  const other = await storage.openMailbox("Other");
  // Copies point at the same map uids: counts above 1.
  await inbox.transaction().copyTo(other, [{ uid1: 1, uid2: 3 }]);
  await inbox.close();
  await other.close();
  await storage.close();
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

describe("mailbox refs", () => {
  it("messageRefs gives each record's uid, flags, keywords, map uid, save date and GUID", () => {
    const prefix = new MdboxPaths(root).indexPrefix("INBOX");
    const state = loadState(prefix);
    const want = [];
    for (let seq = 1; seq <= state.records.count; seq++) {
      const r = recordAt(state, seq)!;
      const mdbox = decodeMdboxRecord(r.ext(MDBOX_EXT_NAME));
      want.push({ uid: r.uid, flags: r.flags, keywords: r.keywords, mapUid: mdbox?.mapUid ?? 0, saveDate: mdbox?.saveDate ?? 0, guid128: r.ext(GUID_EXT_NAME) });
    }
    expect(want.some((w) => w.keywords.length > 0)).toBe(true);
    expect(messageRefs(state)).toEqual(want);
  });

  it("referencedMapUidsInLogs counts what countReferences counts of every snapshot, and not a mailbox whose log is corrupt", async () => {
    const paths = new MdboxPaths(root);
    const counts = countRuns(await referencedMapUidsInLogs(paths));
    expect(sorted(counts)).toEqual(sorted(countReferences(snapshotAllMailboxes(paths))));
    expect(Math.max(...counts.values())).toBe(2);
    fs.writeFileSync(paths.indexPrefix("Other") + ".log", "garbage, not a log");
    const withoutOther = countRuns(await referencedMapUidsInLogs(paths));
    expect(sorted(withoutOther)).toEqual(sorted(countReferences(snapshotAllMailboxes(paths))));
    expect(Math.max(...withoutOther.values())).toBe(1);
  });

  it("referencedMapUidsInLogs takes a state a writer left in the cache, caught up with what another writer appended after it", async () => {
    const paths = new MdboxPaths(root);
    const prefix = paths.indexPrefix("INBOX");
    const closed = new ClosedIndexCache();
    try {
      await writeMailbox(prefix, () => [], { fsync: "never", closedIndexes: closed });
      expect(closed.holds(prefix)).toBe(true);
      // A save by someone else meanwhile: a record pointing at map uid 999.
      await writeMailbox(prefix, (state) => [appendRecords(state.header.nextUid, [{ mapUid: 999, guid128: new Uint8Array(16).fill(7), flags: 0, keywords: [], saveDate: 1 }]).records], { fsync: "never" });
      const counts = countRuns(await referencedMapUidsInLogs(paths, closed));
      expect(counts.get(999)).toBe(1);
      expect(sorted(counts)).toEqual(sorted(countReferences(snapshotAllMailboxes(paths))));
    } finally {
      closed.clear();
    }
  });
});

const sorted = (counts: Map<number, number>) => [...counts].sort((a, b) => a[0] - b[0]);

/** The runs of a sorted list of map uids as counts, after checking that it is sorted. */
function countRuns(mapUids: Uint32Array): Map<number, number> {
  for (let i = 1; i < mapUids.length; i++) expect(mapUids[i - 1]).toBeLessThanOrEqual(mapUids[i]);
  const counts = new Map<number, number>();
  for (const mapUid of mapUids) counts.set(mapUid, (counts.get(mapUid) ?? 0) + 1);
  return counts;
}
