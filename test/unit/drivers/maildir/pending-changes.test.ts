import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { applyPendingOps, readPendingChanges } from "../../../../src/drivers/maildir/pending-changes.js";
import { TransactionLog } from "../../../../src/log/log.js";
import type { LogRecord } from "../../../../src/log/types.js";
import { loadState } from "../../../../src/index-io/load-state.js";

const ext = { external: true, sync: false } as const;
const int = { external: false, sync: false } as const;

describe("pending Maildir changes (internal records after the tail)", () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-maildir-pending-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("are the internal flag, keyword and expunge requests after the tail, per existing UID, in log order", async () => {
    const prefix = path.join(dir, "dovecot.index");
    const log = TransactionLog.open(prefix, { create: {} });
    const tailAt = async (records: LogRecord[]) => log.append(records);
    await tailAt([{ type: "append", ...ext, messages: [1, 2, 3, 9].map((uid) => ({ uid, flags: 0 })) }]);
    // Already applied to the files: internal records followed by a tail update past them.
    await log.append([{ type: "flag-update", ...int, updates: [{ uid1: 1, uid2: 1, addFlags: 4, removeFlags: 0, modseqIncFlag: 0 }] }]);
    const end = log.headPosition.offset;
    await log.append([{ type: "header-update", ...ext, patches: [{ offset: 64, data: new Uint8Array(new Uint32Array([end + 16]).buffer) }] }]);
    await log.append([
      { type: "flag-update", ...int, updates: [{ uid1: 1, uid2: 5, addFlags: 8, removeFlags: 0, modseqIncFlag: 0 }] },
      { type: "keyword-update", ...int, modifyType: "add", name: "Work", ranges: [{ uid1: 2, uid2: 2 }] },
      { type: "keyword-reset", ...int, ranges: [{ uid1: 2, uid2: 2 }] },
      { type: "expunge-guid", ...int, expunges: [{ uid: 9, guid: new Uint8Array(16) }] },
      { type: "flag-update", ...ext, updates: [{ uid1: 3, uid2: 3, addFlags: 1, removeFlags: 0, modseqIncFlag: 0 }] },
    ]);
    const pending = readPendingChanges(prefix, loadState(prefix));
    expect([...pending.keys()].sort((a, b) => a - b)).toEqual([1, 2, 3, 9]);
    expect(pending.get(1)).toEqual([{ kind: "flags", add: 8, remove: 0 }]);
    expect(pending.get(2)).toEqual([{ kind: "flags", add: 8, remove: 0 }, { kind: "keyword", name: "Work", add: true }, { kind: "keyword-reset" }]);
    expect(pending.get(9)?.[0].kind).toBe("expunge");
    await log.close();
  });

  it("apply onto a file's current flags and keywords, case-insensitively", () => {
    expect(applyPendingOps(0x02, ["$Label1"], [{ kind: "flags", add: 0x08, remove: 0x02 }, { kind: "keyword", name: "$label1", add: false }, { kind: "keyword", name: "x", add: true }]))
      .toEqual({ flags: 0x08, keywords: ["x"] });
    expect(applyPendingOps(0x01, ["a", "b"], [{ kind: "keyword-reset" }, { kind: "keyword", name: "c", add: true }])).toEqual({ flags: 0x01, keywords: ["c"] });
  });
});
