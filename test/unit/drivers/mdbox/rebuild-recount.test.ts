import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MdboxStorageBackend } from "../../../../src/drivers/mdbox/storage-backend.js";
import { lookupMapEntry } from "../../../../src/projections/mdbox-map-view.js";
import { messageRefs } from "../../../../src/drivers/mdbox/mailbox-refs.js";
import { openStorage, type Storage } from "../../../../src/index.js";

/**
 * A save that lands between a rebuild's mailbox write (phase 3) and its
 * recount (phase 4): after the rebuild's own write to `prefix`, another
 * writer (not through the rebuild's cache) appends a record pointing at the
 * map uid of the mailbox's first message, as a COPY by another process would.
 */
const injected = vi.hoisted(() => ({ prefix: undefined as string | undefined }));
vi.mock("../../../../src/drivers/mdbox/mailbox-writer.js", async (importOriginal) => {
  const mod = await importOriginal<typeof import("../../../../src/drivers/mdbox/mailbox-writer.js")>();
  return {
    ...mod,
    writeMailbox: async (...args: Parameters<typeof mod.writeMailbox>) => {
      const state = await mod.writeMailbox(...args);
      if (args[0] !== injected.prefix) return state;
      injected.prefix = undefined;
      const first = messageRefs(state)[0];
      return mod.writeMailbox(args[0], (s) => [mod.appendRecords(s.header.nextUid, [{ ...first, flags: 0, keywords: [] }]).records], { fsync: "never" });
    },
  };
});

let root: string;
let storage: Storage;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "mdbox-recount-"));
  storage = openStorage(`mdbox:${root}`, { fsync: "never" });
});
afterEach(async () => {
  injected.prefix = undefined;
  await storage.close();
  fs.rmSync(root, { recursive: true, force: true });
});

describe("rebuild: the last recount", () => {
  it("raises the refcount of a message a record written after the mailbox's rebuild points at", async () => {
    const box = await storage.openMailbox("INBOX");
    const tx = box.transaction();
    for (let i = 1; i <= 5; i++) tx.append({ body: `Subject: ${i}\n\nbody ${i}\n` });
    await tx.commit();
    await box.close();
    // The map lost: the rebuild sets every refcount from the mailbox records it saw.
    for (const suffix of ["", ".log"]) fs.rmSync(path.join(root, "storage", "dovecot.map.index" + suffix), { force: true });
    await storage.close();
    storage = openStorage(`mdbox:${root}`, { fsync: "never" });
    injected.prefix = path.join(root, "mailboxes", "INBOX", "dbox-Mails", "dovecot.index");

    const result = await (storage.backend as MdboxStorageBackend).rebuild();

    expect(injected.prefix).toBeUndefined();
    expect(result.refcountsRaised).toHaveLength(1);
    const map = (storage.backend as MdboxStorageBackend).map;
    expect(lookupMapEntry(map.refresh(), result.refcountsRaised[0])?.refcount).toBe(2);
    // Only that one: the others stay at the one record each.
    const others = result.mapAdded.filter((m) => m !== result.refcountsRaised[0]);
    expect(others.map((m) => lookupMapEntry(map.state, m)?.refcount)).toEqual([1, 1, 1, 1]);
  });
});
