import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MdboxStorageBackend } from "../../../../src/drivers/mdbox/storage-backend.js";
import { messageCount, openStorage, recordAt, type Storage } from "../../../../src/index.js";

/** loadState, failing with `failLoad` for the index prefix it names (passes through otherwise). */
const failLoad = vi.hoisted(() => ({ prefix: undefined as string | undefined, error: undefined as Error | undefined }));
vi.mock("../../../../src/index-io/load-state.js", async (importOriginal) => {
  const mod = await importOriginal<typeof import("../../../../src/index-io/load-state.js")>();
  return {
    ...mod,
    loadState: (...args: Parameters<typeof mod.loadState>) => {
      if (failLoad.prefix !== undefined && args[0] === failLoad.prefix) throw failLoad.error;
      return mod.loadState(...args);
    },
  };
});

let root: string;
let storage: Storage;
const backend = () => storage.backend as MdboxStorageBackend;
const msg = (i: number) => `Subject: ${i}\n\nbody ${i}\n`;
const mapPrefix = () => path.join(root, "storage", "dovecot.map.index");

const inboxPrefix = () => path.join(root, "mailboxes", "INBOX", "dbox-Mails", "dovecot.index");

/** Every file in `dir` whose name starts with `prefix`, with its bytes. */
function filesOf(dir: string, prefix: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of fs.readdirSync(dir).filter((n) => n.startsWith(prefix)).sort()) {
    out.set(name, fs.readFileSync(path.join(dir, name)));
  }
  return out;
}
const mapFiles = () => filesOf(path.join(root, "storage"), "dovecot.map.index");
const inboxIndexFiles = () => filesOf(path.dirname(inboxPrefix()), "dovecot.index");

function eacces(p: string): Error {
  return Object.assign(new Error(`EACCES: permission denied, open '${p}'`), { code: "EACCES", errno: -13, syscall: "open", path: p });
}

/** Saves `n` messages to INBOX, then starts over with a new Storage (as a new doveadm process would). */
async function storeWith(n: number): Promise<void> {
  const box = await storage.openMailbox("INBOX");
  const tx = box.transaction();
  for (let i = 1; i <= n; i++) tx.append({ body: msg(i) });
  await tx.commit();
  await box.close();
  await storage.close();
  storage = openStorage(`mdbox:${root}`, { fsync: "never" });
}

async function inboxBodies(): Promise<string[]> {
  const box = await storage.openMailbox("INBOX");
  const out: string[] = [];
  for (let seq = 1; seq <= messageCount(box.state); seq++) {
    out.push(Buffer.from(await box.readMessage(recordAt(box.state, seq)!.uid)).toString());
  }
  await box.close();
  return out;
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "mdbox-rebuild-"));
  storage = openStorage(`mdbox:${root}`, { fsync: "never" });
});
afterEach(async () => {
  vi.restoreAllMocks();
  failLoad.prefix = failLoad.error = undefined;
  await storage.close();
  fs.rmSync(root, { recursive: true, force: true });
});

describe("rebuild: the map index", () => {
  it("recreates a corrupt map (garbage in dovecot.map.index.log) from the m.N files", async () => {
    await storeWith(2);
    fs.rmSync(mapPrefix(), { force: true });
    fs.writeFileSync(mapPrefix() + ".log", Buffer.from("this is not a dovecot transaction log at all\n".repeat(4)));
    const result = await backend().rebuild();
    expect(result.mapRecreated).toBe(true);
    expect(result.mapAdded).toHaveLength(2);
    expect(await inboxBodies()).toEqual([msg(1), msg(2)]);
  });

  it("does not delete a map that could not be opened for another reason (EACCES): the error propagates", async () => {
    await storeWith(2);
    const before = mapFiles();
    expect(before.has("dovecot.map.index.log")).toBe(true);
    vi.spyOn(backend().map, "open").mockImplementationOnce(() => {
      throw eacces(mapPrefix() + ".log");
    });
    await expect(backend().rebuild()).rejects.toMatchObject({ code: "EACCES" });
    expect(mapFiles()).toEqual(before);
    // Once the map can be opened, the rebuild finds it intact.
    const result = await backend().rebuild();
    expect(result.mapRecreated).toBe(false);
    expect(result.mapAdded).toEqual([]);
    expect(await inboxBodies()).toEqual([msg(1), msg(2)]);
  });
});

describe("rebuild: a mailbox index", () => {
  it("is not replaced when its log could not be read for a reason other than corruption (EACCES): the error propagates", async () => {
    await storeWith(2);
    const before = inboxIndexFiles();
    expect(before.has("dovecot.index.log")).toBe(true);
    failLoad.prefix = inboxPrefix();
    failLoad.error = eacces(inboxPrefix() + ".log");
    await expect(backend().rebuild()).rejects.toMatchObject({ code: "EACCES" });
    expect(inboxIndexFiles()).toEqual(before);
    failLoad.prefix = undefined;
    const result = await backend().rebuild();
    expect(result.recreatedMailboxes).toEqual([]);
    expect(await inboxBodies()).toEqual([msg(1), msg(2)]);
  });

  it("is replaced when its log is corrupt, keeping the messages", async () => {
    await storeWith(2);
    fs.rmSync(inboxPrefix(), { force: true });
    fs.writeFileSync(inboxPrefix() + ".log", Buffer.from("garbage, not a transaction log\n".repeat(4)));
    const result = await backend().rebuild();
    expect(result.recreatedMailboxes).toEqual([{ mailbox: "INBOX", from: "none" }]);
    expect(await inboxBodies()).toEqual([msg(1), msg(2)]);
  });
});
