/**
 * dbox mail files against Dovecot 2.3: files doveadm writes are decoded (and
 * re-encoded byte for byte), and files we write are read by doveadm dump and
 * picked up by force-resync.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOracle, describeInterop, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";
import { decodeDboxFile, decodeSdboxFile, encodeDboxFile, type DboxMessage } from "../../src/drivers/dbox/file-format.js";
import { appendMdboxMessages, listDboxFiles, readDboxMessageAt, writeDboxFile } from "../../src/drivers/dbox/files.js";
import { tryFlockExclusive } from "../../src/drivers/dbox/flock.js";
import { generateMessageGuid } from "../../src/drivers/dbox/guid.js";
import { toLfLineEndings, virtualSizeOf } from "../../src/drivers/dbox/message-body.js";
import { buildDboxMetadata, readDboxMetadata, type NewDboxMetadata } from "../../src/drivers/dbox/metadata.js";
import { mdboxFileHasRoom } from "../../src/drivers/dbox/rotation.js";
import { nextUidValidity, readUidValidity } from "../../src/drivers/dbox/uidvalidity.js";

// ───────────────────────────── helpers ─────────────────────────────

interface DboxDump {
  file: Record<string, string>;
  messages: Array<{ offset: number; fields: Record<string, string> }>;
}

/** Parses `doveadm dump <u.N|m.N>`: "key = value" lines, numbers without their "(date)" suffix. */
function parseDboxDump(text: string): DboxDump {
  const dump: DboxDump = { file: {}, messages: [] };
  for (const line of text.split("\n")) {
    const off = /^offset (\d+):$/.exec(line);
    if (off) {
      dump.messages.push({ offset: Number(off[1]), fields: {} });
      continue;
    }
    const kv = /^(file|msg)\.(\S+) = (.*)$/.exec(line);
    if (!kv) continue;
    const value = kv[3].replace(/^(\d+) \(.*\)$/, "$1");
    if (kv[1] === "file") dump.file[kv[2]] = value;
    else dump.messages[dump.messages.length - 1].fields[kv[2]] = value;
  }
  return dump;
}

/** What doveadm dump should print for a message we decoded. */
function expectedDumpFields(m: DboxMessage): Record<string, string> {
  const meta = readDboxMetadata(m.metadata);
  const out: Record<string, string> = { size: String(m.body.length) };
  if (meta.guid !== undefined) out.guid = meta.guid;
  if (meta.receivedTime !== undefined) out.received = String(meta.receivedTime);
  if (meta.virtualSize !== undefined) out["virtual-size"] = String(meta.virtualSize);
  if (meta.physicalSize !== undefined) out["physical-size"] = String(meta.physicalSize);
  if (meta.pop3Uidl !== undefined) out["pop3-uidl"] = meta.pop3Uidl;
  if (meta.pop3Order !== undefined) out["pop3-order"] = String(meta.pop3Order);
  if (meta.origMailbox !== undefined) out["orig-mailbox"] = meta.origMailbox;
  return out;
}

async function expectDumpMatches(o: DovecotOracle, filePath: string): Promise<void> {
  const bytes = fs.readFileSync(filePath);
  const decoded = decodeDboxFile(bytes, { path: filePath });
  const dump = parseDboxDump(await o.dump(filePath));
  expect(dump.file["msg_header_size"]).toBe(String(decoded.header.msgHeaderSize));
  expect(dump.file["create_stamp"]).toBe(String(decoded.header.createStamp));
  expect(dump.messages.map((m) => m.offset)).toEqual(decoded.messages.map((m) => m.offset));
  decoded.messages.forEach((m, i) => expect(dump.messages[i].fields).toEqual(expectedDumpFields(m)));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** A varied set of inputs: LF, CRLF, no final newline, 8-bit, bigger ones. */
function inputs(): Buffer[] {
  return [
    Buffer.from(sampleMessage(1)),
    Buffer.from(sampleMessage(2).replace(/\n/g, "\r\n")),
    Buffer.from(sampleMessage(3, { body: "no final newline" })),
    Buffer.concat([Buffer.from(sampleMessage(4, { body: "" })), Buffer.from("Gr\xfc\xdfe \u00e9t\u00e9 \xff\x80\n", "latin1")]),
    Buffer.from(sampleMessage(5, { minSize: 600 })),
    Buffer.from(sampleMessage(6, { minSize: 300 })),
    Buffer.from(sampleMessage(7, { minSize: 900 })),
    Buffer.from(sampleMessage(8, { minSize: 200 })),
    Buffer.from(sampleMessage(9, { minSize: 1500 })),
    Buffer.from(sampleMessage(10)),
  ];
}

type FetchRow = Record<string, string>;
const FIELDS = "uid guid size.physical size.virtual date.received.unixtime date.saved.unixtime";

async function fetchRows(o: DovecotOracle, mailbox: string): Promise<FetchRow[]> {
  return o.fetch(FIELDS, ["mailbox", mailbox, "all"]);
}

// ───────────────────────────── Dovecot writes, we read ─────────────────────────────

describeInterop("dbox files written by Dovecot", () => {
  describe("sdbox", () => {
    let o: DovecotOracle;
    beforeAll(async () => {
      o = createOracle("sdbox");
      await o.mailboxCreate("Sub");
      for (const m of inputs()) await o.save("INBOX", m);
      await o.copy("Sub", "mailbox INBOX uid 1:2");
      await o.expunge("mailbox INBOX uid 3");
    });
    afterAll(async () => {
      await o?.cleanup();
    });

    for (const mailbox of ["INBOX", "Sub"]) {
      it(`${mailbox}: every u.N decodes to fetch's text, GUID, sizes and dates, and re-encodes identically`, async () => {
        const dir = o.mailboxIndexDir(mailbox);
        const files = await listDboxFiles(dir, "sdbox");
        const rows = await fetchRows(o, mailbox);
        expect(files.map((f) => f.id)).toEqual(rows.map((r) => Number(r.uid)));
        for (const row of rows) {
          const p = path.join(dir, `u.${row.uid}`);
          const bytes = fs.readFileSync(p);
          const { header, message } = decodeSdboxFile(bytes, { path: p });
          expect(sameBytes(encodeDboxFile({ header, messages: [message] }), bytes)).toBe(true);
          expect(sameBytes(message.body, await o.fetchText(mailbox, Number(row.uid)))).toBe(true);
          const meta = readDboxMetadata(message.metadata);
          expect(meta.guid).toBe(row.guid);
          expect(message.body.length).toBe(Number(row["size.physical"]));
          expect(meta.virtualSize).toBe(Number(row["size.virtual"]));
          expect(meta.virtualSize).toBe(virtualSizeOf(message.body));
          expect(meta.receivedTime).toBe(Number(row["date.received.unixtime"]));
          expect(meta.origMailbox).toBeUndefined(); // B is mdbox only
          // sdbox keeps no save time in the file: Dovecot uses the file's ctime.
          expect(Math.abs(Number(row["date.saved.unixtime"]) - Math.floor(fs.statSync(p).ctimeMs / 1000))).toBeLessThanOrEqual(1);
          expect(message.offset).toBe(16);
          await expectDumpMatches(o, p);
        }
      });
    }

    it("stores bodies with LF line endings, and copies are hard links", async () => {
      const all = inputs();
      const inbox = o.mailboxIndexDir("INBOX");
      const u2 = decodeSdboxFile(fs.readFileSync(path.join(inbox, "u.2"))).message;
      expect(sameBytes(u2.body, toLfLineEndings(all[1]))).toBe(true);
      expect(u2.body.length).toBeLessThan(all[1].length);
      const sub = o.mailboxIndexDir("Sub");
      expect(fs.statSync(path.join(sub, "u.2")).ino).toBe(fs.statSync(path.join(inbox, "u.2")).ino);
      expect(fs.existsSync(path.join(inbox, "u.3"))).toBe(false);
    });

    it("dovecot-uidvalidity: we continue Dovecot's counter and Dovecot continues ours", async () => {
      const before = await readUidValidity(o.root);
      expect(before).toBeDefined();
      const statuses = await o.mailboxStatusAll("uidvalidity", "*");
      expect(Math.max(...statuses.map((s) => Number(s.uidvalidity)))).toBe(before);
      const ours = await nextUidValidity(o.root);
      expect(ours).toBe(before! + 1);
      await o.chownRoot();
      await o.mailboxCreate("After");
      expect(Number((await o.mailboxStatus("uidvalidity", "After")).uidvalidity)).toBe(ours + 1);
      expect(await readUidValidity(o.root)).toBe(ours + 1);
      o.assertNoStderrProblems();
    });
  });

  it("sdbox with zlib_save=gz: the body is the stored (compressed) bytes, Z the plaintext size", async () => {
    const o = createOracle("sdbox", { settings: { mail_plugins: "zlib", "plugin/zlib_save": "gz" } });
    try {
      for (const m of inputs().slice(0, 3)) await o.save("INBOX", m);
      const dir = o.mailboxIndexDir("INBOX");
      for (const row of await fetchRows(o, "INBOX")) {
        const p = path.join(dir, `u.${row.uid}`);
        const bytes = fs.readFileSync(p);
        const { header, message } = decodeSdboxFile(bytes, { path: p });
        expect(sameBytes(encodeDboxFile({ header, messages: [message] }), bytes)).toBe(true);
        const meta = readDboxMetadata(message.metadata);
        expect(message.metadata[0].key).toBe("Z");
        expect(meta.physicalSize).toBe(Number(row["size.physical"]));
        expect(meta.virtualSize).toBe(Number(row["size.virtual"]));
        expect(sameBytes(gunzipSync(message.body), await o.fetchText("INBOX", Number(row.uid)))).toBe(true);
        await expectDumpMatches(o, p);
      }
      o.assertNoStderrProblems();
    } finally {
      await o.cleanup();
    }
  });

  describe("mdbox with mdbox_rotate_size=1k", () => {
    const rotate = 1024;
    let o: DovecotOracle;
    let saved: Buffer[];
    beforeAll(async () => {
      o = createOracle("mdbox", { settings: { mdbox_rotate_size: "1k" } });
      await o.mailboxCreate("Sub");
      saved = inputs();
      for (const m of saved) await o.save("INBOX", m);
    });
    afterAll(async () => {
      await o?.cleanup();
    });

    async function decodeStorage(): Promise<Map<number, ReturnType<typeof decodeDboxFile>>> {
      const files = new Map<number, ReturnType<typeof decodeDboxFile>>();
      for (const f of await listDboxFiles(o.storageDir(), "mdbox")) {
        const p = path.join(o.storageDir(), f.name);
        const bytes = fs.readFileSync(p);
        const decoded = decodeDboxFile(bytes, { path: p });
        expect(sameBytes(encodeDboxFile(decoded), bytes)).toBe(true);
        files.set(f.id, decoded);
      }
      return files;
    }

    async function checkAgainstDovecot(): Promise<void> {
      const files = await decodeStorage();
      expect(files.size).toBeGreaterThan(1);
      // Every map record points at a decoded message of the same size, and
      // every decoded message is pointed at.
      const map = await o.dumpIndex(o.storageDir());
      const byGuid = new Map<string, DboxMessage>();
      const pointed = new Set<string>();
      for (const rec of map.records) {
        const d = rec.ext["map"].details;
        const file = files.get(Number(d["file_id"]));
        expect(file, `m.${d["file_id"]}`).toBeDefined();
        const m = file!.messages.find((x) => x.offset === Number(d["offset"]));
        expect(m, `m.${d["file_id"]} offset ${d["offset"]}`).toBeDefined();
        expect(m!.size).toBe(Number(d["size"]));
        pointed.add(`${d["file_id"]}:${d["offset"]}`);
        byGuid.set(readDboxMetadata(m!.metadata).guid!, m!);
        // The same message read on its own, without the rest of the file.
        const one = await readDboxMessageAt(path.join(o.storageDir(), `m.${d["file_id"]}`), m!.offset);
        expect(sameBytes(one.body, m!.body)).toBe(true);
      }
      for (const [id, file] of files) for (const m of file.messages) expect(pointed.has(`${id}:${m.offset}`)).toBe(true);

      for (const mailbox of ["INBOX", "Sub"]) {
        for (const row of await fetchRows(o, mailbox)) {
          const m = byGuid.get(row.guid);
          expect(m, `${mailbox} uid ${row.uid} guid ${row.guid}`).toBeDefined();
          expect(sameBytes(m!.body, await o.fetchText(mailbox, Number(row.uid)))).toBe(true);
          const meta = readDboxMetadata(m!.metadata);
          expect(m!.body.length).toBe(Number(row["size.physical"]));
          expect(meta.virtualSize).toBe(Number(row["size.virtual"]));
          expect(meta.receivedTime).toBe(Number(row["date.received.unixtime"]));
          expect(meta.origMailbox).toBe("INBOX");
        }
      }
      for (const id of files.keys()) await expectDumpMatches(o, path.join(o.storageDir(), `m.${id}`));
    }

    it("spreads the saves over m.N files exactly as our rotation rule predicts", async () => {
      const files = await decodeStorage();
      // Map uids are handed out in save order.
      const map = await o.dumpIndex(o.storageDir());
      const placed = [...map.records]
        .sort((x, y) => x.uid - y.uid)
        .map((r) => {
          const id = Number(r.ext["map"].details["file_id"]);
          const m = files.get(id)!.messages.find((x) => x.offset === Number(r.ext["map"].details["offset"]))!;
          return { id, m };
        });
      expect(placed.length).toBe(saved.length);
      const predicted: Array<{ sizeBytes: number }> = [];
      const where: number[] = [];
      for (const { m } of placed) {
        // Dovecot looks at up to 10 files, newest first.
        let index = -1;
        for (let i = predicted.length - 1; i >= Math.max(0, predicted.length - 10); i--) {
          if (mdboxFileHasRoom({ fileSizeBytes: predicted[i].sizeBytes, mailSizeBytes: m.body.length, rotateSizeBytes: rotate })) {
            index = i;
            break;
          }
        }
        if (index < 0) index = predicted.push({ sizeBytes: 16 }) - 1;
        predicted[index].sizeBytes += m.size;
        where.push(index + 1);
      }
      expect(placed.map((p) => p.id)).toEqual(where);
      for (const [id] of files) expect(fs.statSync(path.join(o.storageDir(), `m.${id}`)).size).toBe(predicted[id - 1].sizeBytes);
    });

    it("after saves: map records, fetch and dump all agree with the decoded files", async () => {
      await checkAgainstDovecot();
    });

    it("after copy, expunge and purge: the same", async () => {
      await o.copy("Sub", "mailbox INBOX uid 1:4");
      await o.expunge("mailbox INBOX uid 2:3,5,9");
      await o.expunge("mailbox Sub uid 1");
      await o.purge();
      await checkAgainstDovecot();
      o.assertNoStderrProblems();
    });
  });
});

// ───────────────────────────── we write, Dovecot reads ─────────────────────────────

function newMessage(input: string | Buffer, meta: Omit<NewDboxMetadata, "virtualSize">) {
  const body = toLfLineEndings(typeof input === "string" ? Buffer.from(input) : input);
  return { body, metadata: buildDboxMetadata({ ...meta, virtualSize: virtualSizeOf(body) }) };
}

describeInterop("dbox files written by us, read by Dovecot", () => {
  it("sdbox: doveadm dump shows our fields, force-resync finds our u.N with our GUID and text", async () => {
    const o = createOracle("sdbox");
    try {
      await o.save("INBOX", sampleMessage(1));
      const dir = o.mailboxIndexDir("INBOX");
      const guid = generateMessageGuid();
      const m2 = newMessage(sampleMessage(2, { body: "Gr\u00fc\u00dfe\nline 2\n" }).replace(/\n/g, "\r\n"), {
        guid,
        receivedTime: 1_700_000_000,
        pop3Uidl: "uidl-\u00e9-42",
        pop3Order: 7,
      });
      const m3 = newMessage(sampleMessage(3, { body: "no newline" }), { guid: "own-guid@example.com", receivedTime: 1_600_000_000 });
      const header = { msgHeaderSize: 30, createStamp: 1_700_000_001, unknownItems: [] };
      const p2 = await writeDboxFile(dir, "u.2", encodeDboxFile({ header, messages: [m2] }));
      const p3 = await writeDboxFile(dir, "u.3", encodeDboxFile({ header, messages: [m3] }));
      await expectDumpMatches(o, p2);
      await expectDumpMatches(o, p3);
      expect(parseDboxDump(await o.dump(p2)).messages[0].fields).toMatchObject({ "pop3-uidl": "uidl-\u00e9-42", "pop3-order": "7", guid });

      await o.chownRoot();
      await o.forceResync("INBOX");
      const rows = await o.fetch("uid guid size.physical size.virtual date.received.unixtime", ["mailbox", "INBOX", "all"]);
      expect(rows.map((r) => r.uid)).toEqual(["1", "2", "3"]);
      expect(rows[1]).toMatchObject({
        guid,
        "size.physical": String(m2.body.length),
        "size.virtual": String(virtualSizeOf(m2.body)),
        "date.received.unixtime": "1700000000",
      });
      // P and O are checked through doveadm dump above: fetch pop3.uidl reads
      // them only when the dbox-hdr flags HAVE_POP3_UIDLS/ORDERS are set, which
      // a save with a UIDL sets and force-resync does not.
      expect(rows[2]).toMatchObject({ guid: "own-guid@example.com", "date.received.unixtime": "1600000000" });
      expect(sameBytes(await o.fetchText("INBOX", 2), m2.body)).toBe(true);
      expect(sameBytes(await o.fetchText("INBOX", 3), m3.body)).toBe(true);
      // Dovecot continues the mailbox after our files.
      await o.save("INBOX", sampleMessage(4));
      expect((await o.fetch("uid", ["mailbox", "INBOX", "all"])).map((r) => r.uid)).toEqual(["1", "2", "3", "4"]);
      o.assertNoStderrProblems();
    } finally {
      await o.cleanup();
    }
  });

  it("mdbox: a message appended to Dovecot's m.N and a new m.N of ours are rebuilt into the mailboxes named by B", async () => {
    const o = createOracle("mdbox");
    try {
      await o.mailboxCreate("Sub");
      await o.save("INBOX", sampleMessage(1));
      const storage = o.storageDir();
      const m1Path = path.join(storage, "m.1");
      const m1Before = fs.readFileSync(m1Path);

      const appended = newMessage(sampleMessage(2), { guid: generateMessageGuid(), receivedTime: 1_650_000_000, origMailbox: "Sub" });
      const res = await appendMdboxMessages(m1Path, [appended], { expectedSizeBytes: m1Before.length });
      expect(res).toMatchObject({ status: "appended", records: [{ offset: m1Before.length }] });

      const a = newMessage(sampleMessage(3, { minSize: 5000 }), { guid: generateMessageGuid(), receivedTime: 1_650_000_001, origMailbox: "INBOX" });
      const b = newMessage(sampleMessage(4), { guid: generateMessageGuid(), receivedTime: 1_650_000_002, origMailbox: "Sub" });
      const m2Path = await writeDboxFile(storage, "m.2", encodeDboxFile({ header: { msgHeaderSize: 30, createStamp: 1_650_000_003, unknownItems: [] }, messages: [a, b] }));
      await expectDumpMatches(o, m1Path);
      await expectDumpMatches(o, m2Path);

      await o.chownRoot();
      await o.forceResync("*");
      const guidsOf = async (mb: string) => (await o.fetch("uid guid", ["mailbox", mb, "all"])).map((r) => r.guid);
      const inbox = await guidsOf("INBOX");
      const sub = await guidsOf("Sub");
      expect(inbox).toContain(readDboxMetadata(a.metadata).guid);
      expect(sub).toEqual(expect.arrayContaining([readDboxMetadata(appended.metadata).guid, readDboxMetadata(b.metadata).guid]));
      for (const [mb, msg] of [["Sub", appended], ["INBOX", a], ["Sub", b]] as const) {
        const guid = readDboxMetadata(msg.metadata).guid!;
        const row = (await o.fetch("uid guid date.received.unixtime", ["mailbox", mb, "all"])).find((r) => r.guid === guid)!;
        expect(row["date.received.unixtime"]).toBe(String(readDboxMetadata(msg.metadata).receivedTime));
        expect(sameBytes(await o.fetchText(mb, Number(row.uid)), msg.body)).toBe(true);
      }
      // The map now points at our messages where we put them.
      const map = await o.dumpIndex(storage);
      const at = map.records.map((r) => `${r.ext["map"].details["file_id"]}:${r.ext["map"].details["offset"]}`);
      expect(at).toEqual(expect.arrayContaining([`1:${m1Before.length}`, "2:16", `2:${16 + decodeDboxFile(fs.readFileSync(m2Path)).messages[0].size}`]));
      o.assertNoStderrProblems();
    } finally {
      await o.cleanup();
    }
  });

  it("mdbox: Dovecot does not append to an m.N while we hold its flock", async () => {
    const o = createOracle("mdbox");
    try {
      await o.save("INBOX", sampleMessage(1));
      await o.save("INBOX", sampleMessage(2));
      const storage = o.storageDir();
      expect((await listDboxFiles(storage, "mdbox")).map((f) => f.name)).toEqual(["m.1"]);
      const m1 = path.join(storage, "m.1");
      const before = fs.readFileSync(m1);
      const fd = fs.openSync(m1, "r");
      try {
        expect(await tryFlockExclusive(fd, m1)).toBe(true);
        await o.save("INBOX", sampleMessage(3));
      } finally {
        fs.closeSync(fd);
      }
      expect(fs.readFileSync(m1).equals(before)).toBe(true);
      expect((await listDboxFiles(storage, "mdbox")).map((f) => f.name)).toEqual(["m.1", "m.2"]);
      // Unlocked again, the next save goes back to appending.
      await o.save("INBOX", sampleMessage(4));
      expect(decodeDboxFile(fs.readFileSync(path.join(storage, "m.2"))).messages.length + decodeDboxFile(fs.readFileSync(m1)).messages.length).toBe(4);
      o.assertNoStderrProblems();
    } finally {
      await o.cleanup();
    }
  });
});
