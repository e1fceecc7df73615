import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { appendRecords, writeMailbox } from "../../../../src/drivers/mdbox/mailbox-writer.js";
import { initialMailboxRecords } from "../../../../src/drivers/mdbox/mailbox-format.js";
import { messageRefs } from "../../../../src/drivers/mdbox/mailbox-refs.js";
import { loadState } from "../../../../src/index-io/load-state.js";
import { stopWatchingSyncs, watchSyncs } from "../../../helpers/sync-spy.js";

let dir: string;
let prefix: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailbox-writer-"));
  prefix = path.join(dir, "dovecot.index");
});
afterEach(() => {
  stopWatchingSyncs();
  fs.rmSync(dir, { recursive: true, force: true });
});

const guid = (n: number) => new Uint8Array(16).fill(n);
const items = (n: number) => Array.from({ length: n }, (_, i) => ({ mapUid: 100 + i, guid128: guid(i + 1), flags: 0, keywords: [], saveDate: 7 }));
const initialRecords = () => initialMailboxRecords({ mapUidValidity: 1, mailboxGuid: guid(9), flags: 0 }, 5);
const refsOf = (state: Parameters<typeof messageRefs>[0]) => messageRefs(state).map((r) => [r.uid, r.mapUid, r.guid128[0]]);

describe("writeMailbox createWith (a rebuild's recreated mailbox)", () => {
  it("creates the log with the records in it, synced once, and the same state and bytes as creating it and appending them", async () => {
    let syncs = 0;
    watchSyncs(() => syncs++);
    const tx = (nextUid: number) => [appendRecords(nextUid, items(3)).records];
    const built: number[] = [];
    const state = await writeMailbox(prefix, (s) => (built.push(s.header.nextUid), tx(s.header.nextUid)), { initialRecords, createWith: (n) => ({ transactions: tx(n) }) });
    expect(built).toEqual([]);
    expect(syncs).toBe(1);
    expect(refsOf(state)).toEqual([[1, 100, 1], [2, 101, 2], [3, 102, 3]]);
    expect(refsOf(loadState(prefix))).toEqual(refsOf(state));
    const created = fs.readFileSync(prefix + ".log");

    stopWatchingSyncs();
    const other = path.join(dir, "appended", "dovecot.index");
    fs.mkdirSync(path.dirname(other));
    await writeMailbox(other, (s) => tx(s.header.nextUid), { initialRecords });
    // The log header holds the creation time and indexid: the records after it are what must match.
    expect(fs.readFileSync(other + ".log").subarray(40)).toEqual(created.subarray(40));
  });

  it("a log that already exists gets build's records appended", async () => {
    await writeMailbox(prefix, (s) => [appendRecords(s.header.nextUid, items(1)).records], { initialRecords });
    const state = await writeMailbox(prefix, (s) => [appendRecords(s.header.nextUid, items(2)).records], {
      initialRecords,
      createWith: () => {
        throw new Error("not for a log that exists");
      },
    });
    expect(refsOf(state)).toEqual([[1, 100, 1], [2, 100, 1], [3, 101, 2]]);
  });
});
