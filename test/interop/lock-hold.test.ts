/**
 * Locks that hold: while an operation of the engine is inside its locked
 * section, another process cannot take dovecot.index.log's fcntl lock (the
 * lock Dovecot takes), and once the operation returned it can.
 *
 * A classic POSIX lock belongs to the process and is dropped when the
 * process closes ANY descriptor of the file, so a driver that opens and
 * closes its own descriptor of the log in the middle of a sync silently
 * leaves the engine writing without the lock (Maildir's sync once did, see
 * c8dcab4). Each case stops an operation at a point under the lock by
 * wrapping a method the operation calls there, so that it awaits a promise
 * the test controls; holds are placed after the code that could drop the
 * lock (the end of a file sync, of a save), and the probe runs only once the
 * operation signalled it got there. The other process is
 * test/workers/log-lock-worker.mjs in `probe` mode.
 *
 * Hooks used (no edits to src/): MailboxBackend.saveMessages,
 * .syncExternalChanges (Maildir, mbox) and .adoptLeftovers (sdbox; mdbox has
 * none, and the optional hook is provided on the instance, which Mailbox
 * calls under the lock); for force-resync StorageBackend.openMailbox (to
 * reach the resynced mailbox's syncExternalChanges), sdbox's
 * StorageBackend.nextUidValidity (called under the lock only when the index
 * cannot be read), the mdbox map's transact(), and IndexWriter.sync itself
 * where the writer is made inside the driver, out of the test's reach (the
 * sdbox rebuild of a readable index, the mdbox rebuild's mailbox phase):
 * every write of an index goes through that one method, which runs its
 * callback holding the log lock.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, expect, it } from "vitest";
import { flagNames, lookupUid, messageCount, openStorage, type Storage } from "../../src/index.js";
import type { MailboxBackend } from "../../src/drivers/driver.js";
import { MdboxStorageBackend } from "../../src/drivers/mdbox/storage-backend.js";
import { IndexWriter, type IndexSync } from "../../src/index-io/writer.js";
import { createOracle, describeInterop, MAIL_FORMATS, sampleMessage, type DovecotOracle, type MailFormat } from "../helpers/dovecot.js";

const exec = promisify(execFile);
const WORKER = fileURLToPath(new URL("../workers/log-lock-worker.mjs", import.meta.url));

type LockWord = "locked" | "free";

/** Asks another process whether it could take the fcntl lock on `logPath` right now. */
async function probe(logPath: string): Promise<LockWord> {
  const { stdout } = await exec(process.execPath, [WORKER, logPath, "probe"]);
  const word = stdout.trim();
  if (word !== "locked" && word !== "free") throw new Error(`probe of ${logPath} printed ${JSON.stringify(stdout)}`);
  return word;
}

/**
 * A point where an operation stops until the test releases it. `reached`
 * resolves when the operation first gets there; later passes (after the
 * release) go straight through.
 */
class HoldPoint {
  readonly reached: Promise<void>;
  readonly released: Promise<void>;
  hits = 0;
  private arrive!: () => void;
  private let!: () => void;

  constructor(readonly name: string) {
    this.reached = new Promise((resolve) => (this.arrive = resolve));
    this.released = new Promise((resolve) => (this.let = resolve));
  }

  /** Called by the wrapped code. */
  async hold(): Promise<void> {
    this.hits++;
    this.arrive();
    await this.released;
  }

  release(): void {
    this.let();
  }
}

type AsyncFn = (...args: never[]) => Promise<unknown>;
type AsyncMethodKeys<T> = { [K in keyof T]-?: NonNullable<T[K]> extends AsyncFn ? K : never }[keyof T];

/**
 * Makes `obj[key]` run the original to its end and then wait at `point`
 * before returning the original's result: the hold comes after whatever the
 * original did to descriptors.
 */
function holdAfter<T extends object>(obj: T, key: AsyncMethodKeys<T>, point: HoldPoint): void {
  const original = obj[key] as unknown;
  if (typeof original !== "function") throw new Error(`${String(key)} is not a method of ${obj.constructor.name}: the hold point "${point.name}" is gone`);
  const wrapped = async function (this: unknown, ...args: unknown[]): Promise<unknown> {
    const result: unknown = await (original as (...a: unknown[]) => Promise<unknown>).apply(this, args);
    await point.hold();
    return result;
  };
  (obj as Record<PropertyKey, unknown>)[key] = wrapped;
}

/**
 * Makes IndexWriter.sync, for the writers of index `prefix` only, run its
 * callback to the end and then wait at `point` before returning, still
 * inside the locked section (after the callback's writes and whatever it did
 * to descriptors, before the checkpoint and the unlock). Patches the
 * prototype, which the storage code shares with the test (one module
 * instance): for writers a driver opens and closes inside one call.
 * @returns the undo.
 */
function holdSyncsOf(prefix: string, point: HoldPoint): () => void {
  const original = IndexWriter.prototype.sync;
  const target = path.resolve(prefix);
  type Rest = Parameters<IndexWriter["sync"]> extends [unknown, ...infer R] ? R : never;
  const patched = function (this: IndexWriter, fn: (sync: IndexSync) => Promise<unknown>, ...rest: Rest): Promise<unknown> {
    if (path.resolve(this.prefix) !== target) return original.call(this, fn, ...rest);
    return original.call(this, async (sync) => {
      const result = await fn(sync);
      await point.hold();
      return result;
    }, ...rest);
  };
  IndexWriter.prototype.sync = patched as IndexWriter["sync"];
  return () => {
    IndexWriter.prototype.sync = original;
  };
}

/**
 * Runs `op` until it reaches `point`, runs `whileHeld` there, releases, and
 * returns what `op` returned. Fails (instead of hanging) when `op` ends
 * without ever reaching the point: the hook would then test nothing.
 */
async function holdThen<T>(point: HoldPoint, op: Promise<T>, whileHeld: () => Promise<void>): Promise<T> {
  const settled = op.then(() => "settled" as const, () => "settled" as const);
  const first = await Promise.race([point.reached.then(() => "held" as const), settled]);
  if (first !== "held") {
    await op; // rethrows the operation's own error, if it failed
    throw new Error(`the operation returned without reaching the hold point "${point.name}"`);
  }
  try {
    await whileHeld();
  } finally {
    point.release();
    // Let the operation end before an assertion error leaves the test (its locks, its files).
    await settled;
  }
  return op;
}

/** Expects the log locked by this process while held, and free once the operation returned. */
async function expectHeldLock<T>(logPath: string, point: HoldPoint, op: Promise<T>): Promise<T> {
  const result = await holdThen(point, op, async () => {
    expect(await probe(logPath), `another process took ${logPath}'s lock while "${point.name}" was held`).toBe("locked");
  });
  expect(point.hits, `"${point.name}" hits`).toBeGreaterThanOrEqual(1);
  expect(await probe(logPath), `${logPath}'s lock is still held after the operation returned`).toBe("free");
  return result;
}

const FILE_FORMATS: readonly MailFormat[] = ["maildir", "mbox"];
const isFileFormat = (f: MailFormat): boolean => FILE_FORMATS.includes(f);

/** A message another program delivers without a log: Maildir's new/, an MDA's append to the mbox file. */
function deliverOutside(o: DovecotOracle, i: number): void {
  if (o.format === "maildir") fs.writeFileSync(path.join(o.root, "new", `1700000000.M${i}P1.mda`), sampleMessage(i));
  else if (o.format === "mbox") fs.appendFileSync(path.join(o.root, "inbox"), `From mda@example.com Thu Nov 29 22:33:52 2001\n${sampleMessage(i)}\n`);
  else throw new Error(`no outside delivery for ${o.format}`);
}

describeInterop("Locks that hold: dovecot.index.log stays locked until the operation returns", () => {
  let o: DovecotOracle | undefined;
  let storage: Storage | undefined;
  /** Undoes holdSyncsOf's patch of IndexWriter.prototype. */
  let unpatchSync: (() => void) | undefined;
  afterEach(async () => {
    unpatchSync?.();
    unpatchSync = undefined;
    await storage?.close();
    await o?.cleanup();
    storage = o = undefined;
  });

  /** An engine store with INBOX uid 1 and 2 (uid 1 \Seen), closed again. */
  async function prepare(format: MailFormat): Promise<DovecotOracle> {
    o = createOracle(format);
    const s = openStorage(o.location);
    try {
      const box = await s.openMailbox("INBOX");
      await box.transaction().append({ body: sampleMessage(1), flags: ["\\Seen"] }).append({ body: sampleMessage(2) }).commit();
    } finally {
      await s.close();
    }
    return o;
  }

  /** What doveadm reads from the store once the engine closed it: uid → flags. */
  async function doveadmFlags(oracle: DovecotOracle): Promise<Record<number, string[]>> {
    await storage?.close();
    storage = undefined;
    await oracle.chownRoot();
    const rows = await oracle.fetchFlags("INBOX");
    return Object.fromEntries(rows.map((r) => [r.uid, [...r.flags].sort()]));
  }

  for (const format of MAIL_FORMATS) {
    it(`${format}: a flag commit holds the lock until commit() returns`, async () => {
      const oracle = await prepare(format);
      storage = openStorage(oracle.location);
      const box = await storage.openMailbox("INBOX");
      const point = new HoldPoint(isFileFormat(format) ? "end of syncExternalChanges" : "end of adoptLeftovers");
      const backend: MailboxBackend = box.backend;
      if (isFileFormat(format)) {
        // The file sync runs after the flag records were appended, as the last step under the lock.
        holdAfter(backend, "syncExternalChanges", point);
      } else if (backend.adoptLeftovers) {
        holdAfter(backend, "adoptLeftovers", point);
      } else {
        // mdbox: a flag commit calls no driver method; the optional hook is called under the lock when present.
        backend.adoptLeftovers = async () => {
          await point.hold();
          return [];
        };
      }
      const result = await expectHeldLock(oracle.mailboxLogPath("INBOX"), point, box.transaction().flags([{ uid1: 2, uid2: 2 }], "add", ["\\Flagged", "hold"]).commit());
      expect(result.end.offset).toBeGreaterThan(result.start.offset);
      expect([...flagNames(lookupUid(box.state, 2)!.flags), ...lookupUid(box.state, 2)!.keywords]).toEqual(["\\Flagged", "hold"]);
      expect(await doveadmFlags(oracle)).toEqual({ 1: ["\\Seen"], 2: ["\\Flagged", "hold"] });
    });

    it(`${format}: an append commit holds the lock until commit() returns`, async () => {
      const oracle = await prepare(format);
      storage = openStorage(oracle.location);
      const box = await storage.openMailbox("INBOX");
      const point = new HoldPoint("end of saveMessages");
      holdAfter(box.backend, "saveMessages", point);
      const result = await expectHeldLock(oracle.mailboxLogPath("INBOX"), point, box.transaction().append({ body: sampleMessage(3), flags: ["\\Answered"] }).commit());
      expect(result.appendedUids).toEqual([3]);
      expect(messageCount(box.state)).toBe(3);
      expect(await doveadmFlags(oracle)).toEqual({ 1: ["\\Seen"], 2: [], 3: ["\\Answered"] });
    });

    if (isFileFormat(format)) {
      it(`${format}: refresh() holds the lock through the whole file sync`, async () => {
        const oracle = await prepare(format);
        storage = openStorage(oracle.location);
        const box = await storage.openMailbox("INBOX");
        // Something for the sync to find, so that it runs its full path (it once opened and closed the log there).
        deliverOutside(oracle, 3);
        const point = new HoldPoint("end of syncExternalChanges");
        holdAfter(box.backend, "syncExternalChanges", point);
        const state = await expectHeldLock(oracle.mailboxLogPath("INBOX"), point, box.refresh());
        expect(messageCount(state)).toBe(3);
        expect(lookupUid(state, 3)).toBeDefined();
        expect(await doveadmFlags(oracle)).toEqual({ 1: ["\\Seen"], 2: [], 3: [] });
      });

      it(`${format}: force-resync holds the lock through the whole file sync`, async () => {
        const oracle = await prepare(format);
        deliverOutside(oracle, 3);
        storage = openStorage(oracle.location);
        const point = new HoldPoint("end of the resynced mailbox's syncExternalChanges");
        // force-resync opens its own backend of the mailbox; reach it through the storage backend.
        const storageBackend = storage.backend;
        const openMailbox = storageBackend.openMailbox.bind(storageBackend);
        storageBackend.openMailbox = (name: string) => {
          const backend = openMailbox(name);
          holdAfter(backend, "syncExternalChanges", point);
          return backend;
        };
        await expectHeldLock(oracle.mailboxLogPath("INBOX"), point, storage.forceResync("INBOX"));
        expect(await doveadmFlags(oracle)).toEqual({ 1: ["\\Seen"], 2: [], 3: [] });
      });
    }
  }

  it("sdbox: force-resync of a mailbox whose index cannot be read holds the lock of the log it replaces", async () => {
    const oracle = await prepare("sdbox");
    // Dovecot rotates the log (and writes dovecot.index); with .log.2 gone and
    // dovecot.index broken, the index cannot be read, and the rebuild takes a
    // new UIDVALIDITY under the old log's lock: nextUidValidity is the hook.
    await oracle.chownRoot();
    await oracle.flags("add", "$Rotated", "mailbox INBOX uid 2", { extraSettings: { mail_index_log_rotate_max_size: "1", mail_index_rewrite_max_log_bytes: "1" } });
    const dir = oracle.mailboxIndexDir("INBOX");
    const logPath = oracle.mailboxLogPath("INBOX");
    expect(fs.existsSync(logPath + ".2"), "doveadm did not rotate the log").toBe(true);
    fs.rmSync(logPath + ".2");
    fs.writeFileSync(path.join(dir, "dovecot.index"), Buffer.alloc(256, 0xff));
    const logInode = fs.statSync(logPath).ino;

    storage = openStorage(oracle.location);
    const point = new HoldPoint("end of nextUidValidity inside the rebuild");
    holdAfter(storage.backend, "nextUidValidity", point);
    await holdThen(point, storage.forceResync("INBOX"), async () => {
      // The probe must look at the log being replaced, not at a new one already renamed into place.
      expect(fs.statSync(logPath).ino, "the rebuild replaced the log before the hold").toBe(logInode);
      expect(await probe(logPath), "another process took the lock of the log being rebuilt").toBe("locked");
    });
    expect(await probe(logPath)).toBe("free");
    expect(Object.keys(await doveadmFlags(oracle))).toEqual(["1", "2"]);
  });

  it("sdbox: force-resync of a readable index holds the lock of the log it replaces until it returns", async () => {
    const oracle = await prepare("sdbox");
    const dir = oracle.mailboxIndexDir("INBOX");
    const logPath = oracle.mailboxLogPath("INBOX");
    // Something for the rebuild to find: uid 2's file is gone.
    fs.rmSync(path.join(dir, "u.2"));
    // The rebuild writes its new log and renames it over .log inside the
    // locked section, so at the hold the name already means the new file. A
    // hard link keeps the old log reachable for the probe (fcntl locks belong
    // to the inode) without this process opening it: closing a descriptor
    // of its own would drop the lock this test is about.
    const oldLog = path.join(oracle.dir, "replaced-dovecot.index.log");
    fs.linkSync(logPath, oldLog);
    const oldInode = fs.statSync(logPath).ino;

    storage = openStorage(oracle.location);
    const point = new HoldPoint("end of the rebuild's locked section on the readable mailbox index");
    unpatchSync = holdSyncsOf(path.join(dir, "dovecot.index"), point);
    await holdThen(point, storage.forceResync("INBOX"), async () => {
      expect(fs.statSync(logPath).ino, "the hold came before the rebuild replaced the log").not.toBe(oldInode);
      expect(await probe(oldLog), "another process took the lock of the log being replaced").toBe("locked");
    });
    expect(point.hits, `"${point.name}" hits`).toBe(1);
    expect(await probe(oldLog), "the replaced log's lock is still held after force-resync returned").toBe("free");
    expect(await probe(logPath)).toBe("free");
    fs.rmSync(oldLog);
    // Flags came from the readable index; uid 2 went with its file.
    expect(await doveadmFlags(oracle)).toEqual({ 1: ["\\Seen"] });
  });

  it("mdbox: force-resync holds the map log's lock while it fixes the map", async () => {
    const oracle = await prepare("mdbox");
    storage = openStorage(oracle.location);
    const backend = storage.backend;
    if (!(backend instanceof MdboxStorageBackend)) throw new Error(`mdbox storage has backend ${backend.constructor.name}`);
    const point = new HoldPoint("end of the rebuild's first map transaction build");
    const map = backend.map;
    const transact = map.transact.bind(map);
    map.transact = (build, opts) => transact(async (state) => {
      const transactions = await build(state);
      await point.hold();
      return transactions;
    }, opts);
    await expectHeldLock(path.join(oracle.storageDir(), "dovecot.map.index.log"), point, storage.forceResync("*"));
    expect(await doveadmFlags(oracle)).toEqual({ 1: ["\\Seen"], 2: [] });
  });

  it("mdbox: force-resync holds the mailbox log's lock while it fixes the mailbox", async () => {
    const oracle = await prepare("mdbox");
    // uid 2 expunged (its body stays in m.1 until a purge), then the map is
    // lost: nothing says the body was expunged any more, and fixing INBOX
    // (phase 3, the one sync of INBOX's index in a rebuild) puts it back as
    // uid 3, as Dovecot's rebuild does: a write under the mailbox lock.
    const s = openStorage(oracle.location);
    try {
      await (await s.openMailbox("INBOX")).transaction().expunge([{ uid1: 2, uid2: 2 }]).commit();
    } finally {
      await s.close();
    }
    for (const suffix of ["", ".log", ".log.2", ".cache"]) fs.rmSync(path.join(oracle.storageDir(), "dovecot.map.index" + suffix), { force: true });
    const logPath = oracle.mailboxLogPath("INBOX");
    const sizeBefore = fs.statSync(logPath).size;
    storage = openStorage(oracle.location);
    const point = new HoldPoint("end of the rebuild's fix of INBOX");
    unpatchSync = holdSyncsOf(path.join(oracle.mailboxIndexDir("INBOX"), "dovecot.index"), point);
    await expectHeldLock(logPath, point, storage.forceResync("*"));
    expect(point.hits, `"${point.name}" hits`).toBe(1);
    expect(fs.statSync(logPath).size, "fixing INBOX wrote nothing to its log").toBeGreaterThan(sizeBefore);
    expect(await doveadmFlags(oracle)).toEqual({ 1: ["\\Seen"], 3: [] });
  });
});
