import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import { MailstoreError } from "../../src/shared/errors.js";
import { encodeLogFile } from "../../src/log/encode-file.js";
import { parseLogBytes } from "../../src/log/file.js";
import { TransactionLog } from "../../src/log/log.js";
import type { LogRecord } from "../../src/log/types.js";
import { readLog } from "../../src/log/view.js";
import { createOracle, describeInterop, MAIL_FORMATS, sampleMessage, type DovecotOracle, type MailFormat } from "../helpers/dovecot.js";
import { expectSameAsDoveadm } from "../helpers/log-compare.js";

const run = promisify(execFile);
const ext = { external: true, sync: false };
const internal = { external: false, sync: false };

function logFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...logFilesUnder(p));
    else if (/^dovecot\.(index|map\.index|list\.index)\.log(\.2)?$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

/** A workout that makes Dovecot write most record types, then rotate. */
async function exercise(o: DovecotOracle): Promise<void> {
  const sub = o.format === "maildir" ? "Sub.Child" : "Sub/Child";
  for (let i = 1; i <= 5; i++) await o.save("INBOX", sampleMessage(i));
  await o.mailboxCreate(sub);
  await o.flags("add", "\\Seen \\Flagged $Label1 foo", "mailbox INBOX uid 1:3");
  await o.flags("remove", "foo \\Flagged", "mailbox INBOX uid 2");
  await o.flags("replace", "\\Answered bar", "mailbox INBOX uid 4");
  await o.copy(sub, "mailbox INBOX uid 1");
  await o.move(sub, "mailbox INBOX uid 4");
  await o.expunge("mailbox INBOX uid 2");
  await o.run(["fetch", "modseq", "mailbox", "INBOX", "all"]); // enables the modseq extension
  if (o.format === "mdbox") await o.purge();
  await o.flags("add", "\\Draft", "mailbox INBOX uid 5", {
    extraSettings: { mail_index_log_rotate_max_size: "1", mail_index_rewrite_max_log_bytes: "1" },
  });
  await o.save("INBOX", sampleMessage(6));
  await o.mailboxDelete(sub);
}

describeInterop("transaction log against Dovecot 2.3", () => {
  const oracles = new Map<MailFormat, DovecotOracle>();
  beforeAll(async () => {
    await Promise.all(MAIL_FORMATS.map(async (format) => {
      const o = createOracle(format);
      oracles.set(format, o);
      await exercise(o);
    }));
  }, 120_000);
  afterAll(async () => {
    for (const o of oracles.values()) await o.cleanup();
  });

  it.each(MAIL_FORMATS)("%s: every log Dovecot wrote decodes, re-encodes to identical bytes and dumps like doveadm", async (format) => {
    const o = oracles.get(format)!;
    const files = logFilesUnder(o.root);
    expect(files.some((f) => f.endsWith("dovecot.index.log.2"))).toBe(true);
    expect(files.some((f) => f.endsWith("dovecot.list.index.log"))).toBe(true);
    if (format === "mdbox") expect(files.some((f) => f.endsWith("dovecot.map.index.log"))).toBe(true);
    for (const file of files) {
      const bytes = fs.readFileSync(file);
      const parsed = parseLogBytes(bytes, file);
      expect(parsed.syncOffset, file).toBe(bytes.length);
      const again = encodeLogFile(parsed.header, parsed.transactions.map((t) => ({ framed: t.framed, records: t.entries.map((e) => e.record) })));
      expect(Buffer.compare(Buffer.from(again), bytes), file).toBe(0);
      expectSameAsDoveadm(parsed, await o.dumpLog(file));
    }
  });

  it("reads across Dovecot's rotation: .log.2 then .log, chained", () => {
    const prefix = path.join(oracles.get("sdbox")!.mailboxIndexDir("INBOX"), "dovecot.index");
    const read = readLog(prefix);
    expect(read.headers).toHaveLength(2);
    expect(read.headers[1].prevFileSeq).toBe(read.headers[0].fileSeq);
    // Dovecot may rotate more than once; what came before .log.2 lives only in dovecot.index.
    expect(read.fromScratch).toBe(read.headers[0].prevFileSeq === 0);
    const appended = read.transactions.flatMap((t) => t.entries).flatMap((e) => (e.record.type === "append" ? e.record.messages.map((m) => m.uid) : []));
    expect(appended.at(-1)).toBe(6);
    expect(appended).toEqual([...appended].sort((a, b) => a - b));
    expect(read.transactions.map((t) => t.position.fileSeq)).toEqual([...read.transactions.map((t) => t.position.fileSeq)].sort());
    const resumed = readLog(prefix, { fileSeq: read.headers[0].fileSeq, offset: read.headers[1].prevFileOffset });
    expect(resumed.transactions.every((t) => t.position.fileSeq === read.headers[1].fileSeq)).toBe(true);
  });

  it("torn tail: truncating Dovecot's log anywhere in its last transaction leaves exactly the ones before", () => {
    const file = MAIL_FORMATS.flatMap((f) => logFilesUnder(oracles.get(f)!.root))
      .map((f) => ({ f, size: fs.statSync(f).size })).sort((a, b) => b.size - a.size)[0].f;
    const bytes = fs.readFileSync(file);
    const full = parseLogBytes(bytes, file);
    expect(full.transactions.length).toBeGreaterThan(3);
    for (const keep of [1, 2, 3]) {
      const cutFrom = full.transactions[full.transactions.length - keep].position.offset;
      const cutTo = keep === 1 ? bytes.length : full.transactions[full.transactions.length - keep + 1].position.offset;
      for (let cut = cutFrom; cut < cutTo; cut++) {
        const torn = parseLogBytes(bytes.subarray(0, cut), file);
        expect(torn.transactions.length).toBe(full.transactions.length - keep);
      }
    }
  });

  it("fuzz: mutated Dovecot logs give typed errors only, in bounded time", () => {
    const samples = MAIL_FORMATS.flatMap((f) => logFilesUnder(oracles.get(f)!.root)).map((f) => fs.readFileSync(f));
    fc.assert(fc.property(
      fc.integer({ min: 0, max: samples.length - 1 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
      fc.option(fc.nat()),
      (which, flips, cut) => {
        const b = Uint8Array.from(samples[which]);
        for (const [at, value] of flips) b[at % b.length] = value;
        const input = cut === null ? b : b.subarray(0, cut % (b.length + 1));
        const t0 = performance.now();
        try {
          const parsed = parseLogBytes(input, "fuzz.log");
          expect(parsed.syncOffset).toBeLessThanOrEqual(input.length);
        } catch (err) {
          if (!(err instanceof MailstoreError)) throw err;
          expect(err.path).toBe("fuzz.log");
        }
        expect(performance.now() - t0).toBeLessThan(1000);
      },
    ), { numRuns: 3000, seed: Number(process.env.FUZZ_SEED ?? 20261123) });
  });
});

describeInterop("engine-written logs read and continued by Dovecot", () => {
  let o: DovecotOracle;
  let dir: string;
  let prefix: string;
  beforeAll(async () => {
    o = createOracle("sdbox");
    // Message files come from Dovecot itself (the dbox driver is not this test's subject).
    await o.mailboxCreate("Scratch");
    for (let i = 1; i <= 3; i++) await o.save("Scratch", sampleMessage(i));
    dir = o.mailboxIndexDir("INBOX");
    fs.mkdirSync(dir, { recursive: true });
    for (let uid = 1; uid <= 3; uid++) fs.copyFileSync(path.join(o.mailboxIndexDir("Scratch"), `u.${uid}`), path.join(dir, `u.${uid}`));
    prefix = path.join(dir, "dovecot.index");
  });
  afterAll(async () => o?.cleanup());

  it("doveadm dumps the engine's records, fetches the state they describe, appends after them, and the engine reads on", async () => {
    const u32 = (v: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v, true); return b; };
    const dboxHdr = new Uint8Array(24);
    dboxHdr.set(Buffer.from("0123456789abcdef0123456789abcdef", "hex"), 4);
    const log = TransactionLog.open(prefix, {
      create: {
        indexId: 0x65000000,
        initialRecords: [
          { type: "ext-intro", ...ext, intros: [{ extId: 0xffffffff, resetId: 0, hdrSize: 24, recordSize: 0, recordAlign: 0, flags: 1, name: "dbox-hdr" }] },
          { type: "ext-hdr", ...ext, patches: [{ offset: 0, data: dboxHdr }] },
        ],
      },
      fsync: "never",
    });
    const records: LogRecord[][] = [
      [{ type: "header-update", ...ext, patches: [{ offset: 24, data: u32(1700000000) }] }],
      [{ type: "append", ...ext, messages: [{ uid: 1, flags: 0x08 }, { uid: 2, flags: 0 }, { uid: 3, flags: 0x02 }] },
       { type: "ext-intro", ...ext, intros: [{ extId: 0xffffffff, resetId: 0, hdrSize: 8, recordSize: 4, recordAlign: 4, flags: 1, name: "mailstore-test" }] },
       { type: "ext-hdr", ...ext, patches: [{ offset: 0, data: u32(77) }] },
       { type: "ext-rec", ...ext, recordSize: 4, updates: [{ uid: 1, data: u32(11) }, { uid: 3, data: u32(33) }] }],
      [{ type: "flag-update", ...internal, updates: [{ uid1: 1, uid2: 2, addFlags: 0x01, removeFlags: 0x08, modseqIncFlag: 0 }] },
       { type: "keyword-update", ...internal, modifyType: "add", name: "$Label1", ranges: [{ uid1: 1, uid2: 3 }] },
       { type: "keyword-update", ...internal, modifyType: "add", name: "work", ranges: [{ uid1: 3, uid2: 3 }] }],
      [{ type: "keyword-update", ...internal, modifyType: "remove", name: "$Label1", ranges: [{ uid1: 2, uid2: 2 }] }],
      [{ type: "expunge-guid", ...ext, expunges: [{ uid: 2, guid: new Uint8Array(16) }] }],
    ];
    let end;
    for (const tx of records) end = (await log.append(tx)).end;
    fs.rmSync(path.join(dir, "u.2"));
    await o.chownRoot();

    const ours = parseLogBytes(fs.readFileSync(prefix + ".log"), prefix + ".log");
    expectSameAsDoveadm(ours, await o.dumpLog(prefix + ".log"));
    expect(await o.fetchFlags("INBOX")).toEqual([
      { uid: 1, flags: ["\\Answered", "$Label1"] },
      { uid: 3, flags: ["\\Flagged", "$Label1", "work"] },
    ]);
    const index = await o.dumpIndex(dir);
    expect(index.records.map((r) => r.uid)).toEqual([1, 3]);

    // Dovecot continues the engine's log ...
    await o.save("INBOX", sampleMessage(9));
    await o.flags("add", "\\Seen", "mailbox INBOX uid 3");
    o.assertNoStderrProblems();
    const continued = readLog(prefix, end);
    const types = continued.transactions.flatMap((t) => t.entries.map((e) => e.record.type));
    expect(types).toContain("append");
    expect(types).toContain("flag-update");
    const whole = parseLogBytes(fs.readFileSync(prefix + ".log"), prefix + ".log");
    expectSameAsDoveadm(whole, await o.dumpLog(prefix + ".log"));

    // ... and the engine continues Dovecot's, under the same lock.
    await log.append([{ type: "flag-update", ...internal, updates: [{ uid1: 4, uid2: 4, addFlags: 0x04, removeFlags: 0, modseqIncFlag: 0 }] }]);
    await log.close();
    await o.chownRoot();
    const after = await o.fetchFlags("INBOX");
    expect(after.map((m) => m.uid)).toEqual([1, 3, 4]);
    expect(after[1].flags).toContain("\\Seen");
    expect(after[2].flags).toContain("\\Deleted");
    o.assertNoStderrProblems();
  });

  it("rotation by the engine is followed by Dovecot", async () => {
    const log = TransactionLog.open(prefix, { fsync: "never" });
    const before = await o.fetchFlags("INBOX");
    await log.rotate();
    await log.append([{ type: "flag-update", ...internal, updates: [{ uid1: 1, uid2: 1, addFlags: 0x10, removeFlags: 0, modseqIncFlag: 0 }] }]);
    await log.close();
    await o.chownRoot();
    const dump = await o.dumpLog(prefix + ".log");
    expect(Number(dump.header["file seq"])).toBe(parseLogBytes(fs.readFileSync(prefix + ".log.2"), "x").header.fileSeq + 1);
    const after = await o.fetchFlags("INBOX");
    expect(after.map((m) => m.uid)).toEqual(before.map((m) => m.uid));
    expect(after[0].flags).toContain("\\Draft");
    await o.save("INBOX", sampleMessage(10));
    o.assertNoStderrProblems();
    const read = readLog(prefix);
    expect(read.transactions.at(-1)!.entries.some((e) => e.record.type === "append")).toBe(true);
  });

  it("locking: two engine processes and doveadm append to one log at once, nothing lost or interleaved", async () => {
    const worker = path.resolve(__dirname, "../workers/append-worker.mjs");
    const perWorker = 150;
    const doveadmRounds = 12;
    const dovecot = (async () => {
      for (let i = 0; i < doveadmRounds; i++) {
        await o.flags("add", `dk${i}`, "mailbox INBOX uid 1");
      }
    })();
    await Promise.all([
      run(process.execPath, [worker, prefix, "wa", String(perWorker), "3"]),
      run(process.execPath, [worker, prefix, "wb", String(perWorker), "3"]),
      dovecot,
    ]);
    await o.chownRoot();
    const read = readLog(prefix);
    const keywordTxs = new Map<string, number>();
    for (const tx of read.transactions) {
      for (const e of tx.entries) {
        if (e.record.type !== "keyword-update") continue;
        const name = e.record.name;
        keywordTxs.set(name, (keywordTxs.get(name) ?? 0) + 1);
        if (/^w[ab]k\d+$/.test(name)) {
          expect(tx.entries.map((x) => x.record.type)).toEqual(["flag-update", "keyword-update"]);
        }
      }
    }
    for (const w of ["wa", "wb"]) for (let i = 0; i < perWorker; i++) expect(keywordTxs.get(`${w}k${i}`), `${w}k${i}`).toBe(1);
    for (let i = 0; i < doveadmRounds; i++) expect(keywordTxs.get(`dk${i}`), `dk${i}`).toBe(1);
    expectSameAsDoveadm(parseLogBytes(fs.readFileSync(prefix + ".log"), "x"), await o.dumpLog(prefix + ".log"));
    const flags = await o.fetchFlags("INBOX", "uid 1");
    expect(flags[0].flags).toContain("wak0");
    o.assertNoStderrProblems();
  });
});
