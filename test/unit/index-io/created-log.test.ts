import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { appendRecords } from "../../../src/drivers/mdbox/mailbox-writer.js";
import { initialMailboxRecords } from "../../../src/drivers/mdbox/mailbox-format.js";
import { loadState, stateOfCreatedLog } from "../../../src/index-io/load-state.js";
import { IndexWriter } from "../../../src/index-io/writer.js";
import { TransactionLog } from "../../../src/log/log.js";

const guid = (n: number) => new Uint8Array(16).fill(n);
const items = (n: number, keyword?: string) =>
  Array.from({ length: n }, (_, i) => ({ mapUid: 100 + i, guid128: guid(i + 1), flags: i % 3, keywords: keyword && i % 2 ? [keyword] : [], saveDate: 7 }));
const create = () => ({
  initialRecords: initialMailboxRecords({ mapUidValidity: 1, mailboxGuid: guid(9), flags: 0 }, 5),
  transactions: [appendRecords(1, items(50, "$Junk")).records, appendRecords(51, items(2)).records],
});

describe("a log created with its transactions, folded from what was written", () => {
  let dir: string;
  let prefix: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-created-log-"));
    prefix = path.join(dir, "dovecot.index");
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("gives the state a load reads back from the file, and its end", () => {
    const created = TransactionLog.createIfMissingDecoded(prefix, create());
    expect(created).toBeDefined();
    const state = stateOfCreatedLog(created!);
    expect(state).toEqual(loadState(prefix));
    expect(created!.end.position.offset).toBe(fs.statSync(prefix + ".log").size);
    expect(state.header.nextUid).toBe(53);
  });

  it("hands back nothing when the log exists, and leaves it as it was", () => {
    TransactionLog.createIfMissingDecoded(prefix, create());
    const before = fs.readFileSync(prefix + ".log");
    expect(TransactionLog.createIfMissingDecoded(prefix, create())).toBeUndefined();
    expect(fs.readFileSync(prefix + ".log")).toEqual(before);
  });

  it("a writer opened from it folds what another writer appended after the creation at its next sync", async () => {
    const created = TransactionLog.createIfMissingDecoded(prefix, create())!;
    const other = IndexWriter.open(prefix);
    await other.sync(async (s) => s.append([appendRecords(s.state.header.nextUid, items(1)).records]));
    await other.close();
    const writer = IndexWriter.openCreated(prefix, created);
    try {
      const nextUid = await writer.sync(async (s) => s.state.header.nextUid);
      expect(nextUid).toBe(54);
      expect(writer.state).toEqual(loadState(prefix));
    } finally {
      await writer.close();
    }
  });
});
