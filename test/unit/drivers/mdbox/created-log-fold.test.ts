/**
 * A log the rebuild creates is folded from what it wrote, its big
 * EXT_REC_UPDATE records copied a leaf of rows at a time (applyExtRecUpdate):
 * the state must be the one the fold of the written log read back gives,
 * which is what every later open reads.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { appendRecords, writeMailbox, type MailboxAppend } from "../../../../src/drivers/mdbox/mailbox-writer.js";
import { initialMailboxRecords } from "../../../../src/drivers/mdbox/mailbox-format.js";
import { MdboxStorageBackend } from "../../../../src/drivers/mdbox/storage-backend.js";
import { loadState } from "../../../../src/index-io/load-state.js";
import { fingerprint, replayedLog as replayedLogIn } from "../../../helpers/state-fingerprint.js";
import type { IndexMapState } from "../../../../src/projections/state.js";
import { openStorage, type Storage } from "../../../../src/index.js";
import { prng } from "../../../../campaign/lib/rng.js";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "created-log-fold-"));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const replayedLog = (prefix: string): IndexMapState => replayedLogIn(prefix, dir);

const seeds = (process.env.SEED ? [Number(process.env.SEED)] : [1, 2, 3, 4, 5, 6, 7, 8].map((n) => (Date.now() + n * 7919) >>> 0));

describe("EXT_REC_UPDATE rows: a created mailbox log", () => {
  it.each(seeds)("the state built from what was written is the fold of the written log (seed %i)", async (seed) => {
    console.log(`created-log-fold mailbox seed ${seed}`);
    const rand = prng(seed);
    const n = 1 + Math.floor(rand() * 3000);
    const items: MailboxAppend[] = Array.from({ length: n }, () => ({
      mapUid: 1 + Math.floor(rand() * 1e6),
      guid128: Uint8Array.from({ length: 16 }, () => Math.floor(rand() * 256)),
      flags: Math.floor(rand() * 32),
      keywords: rand() < 0.1 ? ["kw"] : [],
      saveDate: Math.floor(rand() * 2 ** 31),
    }));
    const firstUid = 1 + Math.floor(rand() * 50);
    const initialRecords = () => initialMailboxRecords({ mapUidValidity: 7, mailboxGuid: new Uint8Array(16).fill(3), flags: 0 }, 11);
    const prefix = path.join(dir, "dovecot.index");
    const createWith = () => {
      const put = appendRecords(firstUid, items);
      return { transactions: [put.records] };
    };
    const state = await writeMailbox(prefix, () => [], { initialRecords, createWith });
    expect(fingerprint(state)).toEqual(fingerprint(replayedLog(prefix)));
  });
});

describe("EXT_REC_UPDATE rows: a rebuild after index loss", () => {
  let storage: Storage;
  afterEach(async () => {
    await storage.close();
  });

  it.each(seeds)("the rebuilt map's state is the fold of its log, and so is every index file written (seed %i)", async (seed) => {
    console.log(`created-log-fold storage seed ${seed}`);
    const rand = prng(seed);
    const root = path.join(dir, "mail");
    storage = openStorage(`mdbox:${root}`, { fsync: "never" });
    const names = ["INBOX", "A", "B/C"];
    for (const name of names.slice(1)) await storage.createMailbox(name);
    for (const name of names) {
      const box = await storage.openMailbox(name);
      const tx = box.transaction();
      const count = Math.floor(rand() * 300);
      for (let i = 0; i < count; i++) tx.append({ body: `Subject: ${name} ${i}\n\n${"x".repeat(Math.floor(rand() * 200))}\n`, flags: rand() < 0.3 ? ["\\Seen"] : [] });
      await tx.commit();
      if (count > 2 && rand() < 0.5) await box.transaction().expunge([{ uid1: 1, uid2: Math.floor(count / 3) }]).commit();
      await box.close();
    }
    await storage.close();
    const drop = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) drop(p);
        else if (e.name.startsWith("dovecot.index") || e.name.startsWith("dovecot.map.index")) fs.rmSync(p);
      }
    };
    drop(root);
    storage = openStorage(`mdbox:${root}`, { fsync: "never" });
    const backend = storage.backend as MdboxStorageBackend;
    const result = await backend.rebuild();
    expect(result.mapRecreated).toBe(true);
    const mapPrefix = path.join(root, "storage", "dovecot.map.index");
    expect(fingerprint(backend.map.state)).toEqual(fingerprint(replayedLog(mapPrefix)));
    // dovecot.map.index, when written, is that state too.
    if (fs.existsSync(mapPrefix)) expect(fingerprint(loadState(mapPrefix))).toEqual(fingerprint(replayedLog(mapPrefix)));
    for (const r of result.recreatedMailboxes) {
      const prefix = path.join(root, "mailboxes", ...r.mailbox.split("/"), "dbox-Mails", "dovecot.index");
      if (fs.existsSync(prefix)) expect(fingerprint(loadState(prefix))).toEqual(fingerprint(replayedLog(prefix)));
    }
  });
});
