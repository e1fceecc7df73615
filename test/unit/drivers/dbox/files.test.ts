import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MailCorruptedError, MailstoreError } from "../../../../src/shared/errors.js";
import {
  appendMdboxMessages,
  createDboxTempFile,
  listDboxFiles,
  mdboxFileName,
  publishDboxTempFile,
  readDboxFile,
  readDboxMessageAt,
  DboxMessageReader,
  sdboxFileName,
  writeDboxFile,
} from "../../../../src/drivers/dbox/files.js";
import { decodeDboxFile, encodeDboxFile, type DboxMessageInput } from "../../../../src/drivers/dbox/file-format.js";
import { buildDboxMetadata } from "../../../../src/drivers/dbox/metadata.js";
import { tryFlockExclusive, unlockFlock } from "../../../../src/drivers/dbox/flock.js";
import { MDBOX_M1, SDBOX_U1 } from "./fixtures.js";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "dbox-files-"));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const latin1 = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));

function message(i: number, bodySize = 50): DboxMessageInput {
  const body = latin1(`Subject: ${i}\n\n`.padEnd(bodySize - 1, "x") + "\n");
  return { body, metadata: buildDboxMetadata({ receivedTime: 1000 + i, virtualSize: body.length + 3, guid: `guid-${i}`, origMailbox: "INBOX" }) };
}

describe("writing new files", () => {
  it("goes through a Dovecot-style temp file, then takes the final name", async () => {
    const tempPath = await createDboxTempFile(dir, SDBOX_U1);
    expect(path.basename(tempPath)).toMatch(/^\.temp\.\d+\.P\d+Q\d+M\d+\..+$/);
    expect(fs.readdirSync(dir)).toEqual([path.basename(tempPath)]);
    await publishDboxTempFile(tempPath, path.join(dir, "u.1"));
    expect(fs.readdirSync(dir)).toEqual(["u.1"]);
    expect(fs.readFileSync(path.join(dir, "u.1")).equals(Buffer.from(SDBOX_U1))).toBe(true);
  });

  it("never replaces an existing file", async () => {
    await writeDboxFile(dir, sdboxFileName(1), SDBOX_U1);
    const err = await writeDboxFile(dir, sdboxFileName(1), MDBOX_M1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MailstoreError);
    expect((err as MailstoreError).code).toBe("ALREADY_EXISTS");
    expect(fs.readdirSync(dir)).toEqual(["u.1"]); // the temp file is gone too
    expect(fs.readFileSync(path.join(dir, "u.1")).equals(Buffer.from(SDBOX_U1))).toBe(true);
  });

  it("readDboxFile decodes and names the file in errors", async () => {
    const p = await writeDboxFile(dir, mdboxFileName(1), MDBOX_M1);
    expect((await readDboxFile(p)).messages.length).toBe(3);
    fs.writeFileSync(path.join(dir, "m.2"), MDBOX_M1.subarray(0, 200));
    const err = await readDboxFile(path.join(dir, "m.2")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MailCorruptedError);
    expect((err as MailCorruptedError).path).toBe(path.join(dir, "m.2"));
    expect((err as MailCorruptedError).offset).toBe(200); // inside message 2 (offset 135): its metadata has no end line
  });
});

describe("reading one message by offset", () => {
  it("returns the same message as decoding the whole file", async () => {
    const p = await writeDboxFile(dir, "m.1", MDBOX_M1);
    const whole = decodeDboxFile(MDBOX_M1);
    for (const m of whole.messages) {
      const one = await readDboxMessageAt(p, m.offset);
      expect(one.offset).toBe(m.offset);
      expect(one.size).toBe(m.size);
      expect(Buffer.from(one.body).equals(Buffer.from(m.body))).toBe(true);
      expect(one.metadata).toEqual(m.metadata);
    }
  });

  it("a DboxMessageReader keeps the file open across reads, with or without the map's size hint (too small a hint grows), sees appends, and opens another file when asked", async () => {
    const p = await writeDboxFile(dir, "m.1", MDBOX_M1);
    const whole = decodeDboxFile(MDBOX_M1);
    const reader = new DboxMessageReader();
    try {
      for (const hint of [undefined, 1, 31, ...whole.messages.map((m) => m.size)]) {
        for (const m of whole.messages) {
          const one = reader.read(p, m.offset, hint);
          expect([one.offset, one.size, Buffer.from(one.body).toString("latin1")]).toEqual([m.offset, m.size, Buffer.from(m.body).toString("latin1")]);
        }
      }
      // An append after the file was opened: its message is found past the size seen at open.
      const extra = encodeDboxFile({ header: { msgHeaderSize: 30, createStamp: 1, unknownItems: [] }, messages: [message(9)] });
      const headerLine = extra.indexOf(0x0a) + 1;
      fs.appendFileSync(p, extra.subarray(headerLine));
      const appended = reader.read(p, MDBOX_M1.length);
      expect(Buffer.from(appended.body).toString("latin1")).toBe(Buffer.from(message(9).body).toString("latin1"));
      const other = await writeDboxFile(dir, "m.2", MDBOX_M1);
      expect(reader.read(other, whole.messages[0].offset).size).toBe(whole.messages[0].size);
    } finally {
      reader.forget();
    }
  });

  it("reads ahead on a sequential walk, within one read-ahead key: a new key sees bytes rewritten past what was read", async () => {
    const bytes = encodeDboxFile({ header: { msgHeaderSize: 30, createStamp: 1, unknownItems: [] }, messages: [1, 2, 3, 4].map((i) => message(i)) });
    const p = await writeDboxFile(dir, "m.1", bytes);
    const whole = decodeDboxFile(bytes);
    const text = (m: { body: Uint8Array }) => Buffer.from(m.body).toString("latin1");
    const reader = new DboxMessageReader();
    try {
      const key = {};
      const [m1, m2, m3, m4] = whole.messages;
      reader.read(p, m1.offset, m1.size, key);
      const second = reader.read(p, m2.offset, m2.size, key); // sequential: reads ahead to the end
      expect(text(second)).toBe(text(m2));
      // An uncommitted append rolled back and written again: same length, other bytes.
      const fd = fs.openSync(p, "r+");
      fs.writeSync(fd, Buffer.from("Subject: Z"), 0, 10, m3.offset + 30);
      fs.closeSync(fd);
      const third = reader.read(p, m3.offset, m3.size, key);
      expect(text(third)).toBe(text(m3)); // served from the read-ahead: the key says nothing changed
      third.body.fill(0x41); // a fresh buffer: the read-ahead keeps its bytes
      expect(text(reader.read(p, m4.offset, m4.size, key))).toBe(text(m4));
      // A new key (a newer map state) reads the file again.
      reader.read(p, m2.offset, m2.size, {});
      expect(text(reader.read(p, m3.offset, m3.size, {}))).toMatch(/^Subject: Z/);
      // Without a key there is no read-ahead at all.
      expect(text(reader.read(p, m3.offset, m3.size))).toMatch(/^Subject: Z/);
    } finally {
      reader.forget();
    }
  });

  it("readBody from the read-ahead gives read()'s body and size, a short size hint growing past the window's part for it", async () => {
    const bytes = encodeDboxFile({ header: { msgHeaderSize: 30, createStamp: 1, unknownItems: [] }, messages: [1, 2, 3, 4, 5].map((i) => message(i)) });
    const p = await writeDboxFile(dir, "m.1", bytes);
    const whole = decodeDboxFile(bytes);
    const reader = new DboxMessageReader();
    try {
      const key = {};
      for (const [i, m] of whole.messages.entries()) {
        // Message 3's hint falls 5 bytes short of its end line: the end is past what the hint covers, in the window or not.
        const got = reader.readBody(p, m.offset, i === 2 ? m.size - 5 : m.size, key);
        expect(got.size, `message ${i + 1}`).toBe(m.size);
        expect(Buffer.from(got.body).equals(Buffer.from(m.body)), `message ${i + 1}`).toBe(true);
      }
    } finally {
      reader.forget();
    }
  });

  it("grows its read for long metadata and large bodies", async () => {
    const big: DboxMessageInput = {
      body: latin1("x".repeat(20000)),
      metadata: [...buildDboxMetadata({ receivedTime: 1, virtualSize: 1, guid: "g" }), { key: "Q", value: "y".repeat(10000) }, { key: "Q", value: "z".repeat(9000) }],
    };
    const bytes = encodeDboxFile({ header: { msgHeaderSize: 30, createStamp: 1, unknownItems: [] }, messages: [message(1), big, message(2)] });
    const p = await writeDboxFile(dir, "m.1", bytes);
    const whole = decodeDboxFile(bytes);
    const one = await readDboxMessageAt(p, whole.messages[1].offset);
    expect(one.size).toBe(whole.messages[1].size);
    expect(one.metadata).toEqual(big.metadata);
  });

  it("reports bad offsets and broken messages as MailCorruptedError", async () => {
    const p = await writeDboxFile(dir, "m.1", MDBOX_M1);
    for (const offset of [0, 15, 17, 134, MDBOX_M1.length, MDBOX_M1.length + 10, -1, 1.5]) {
      const err = await readDboxMessageAt(p, offset).catch((e: unknown) => e);
      expect(err, `offset ${offset}`).toBeInstanceOf(MailCorruptedError);
      expect((err as MailCorruptedError).path).toBe(p);
    }
    // Truncated inside the body, metadata and header of the last message.
    for (const cut of [MDBOX_M1.length - 1, 300, 270, 260]) {
      fs.writeFileSync(path.join(dir, "t"), MDBOX_M1.subarray(0, cut));
      const err = await readDboxMessageAt(path.join(dir, "t"), 256).catch((e: unknown) => e);
      expect(err, `cut ${cut}`).toBeInstanceOf(MailCorruptedError);
      expect((err as MailCorruptedError).offset).toBeGreaterThanOrEqual(256);
    }
    fs.writeFileSync(path.join(dir, "empty"), "");
    expect(await readDboxMessageAt(path.join(dir, "empty"), 16).catch((e: unknown) => e)).toBeInstanceOf(MailCorruptedError);
  });
});

describe("appending to m.N", () => {
  it("appends after the last message and returns the map offsets and sizes", async () => {
    const p = await writeDboxFile(dir, "m.1", MDBOX_M1);
    const res = await appendMdboxMessages(p, [message(1), message(2)], { expectedSizeBytes: MDBOX_M1.length });
    expect(res.status).toBe("appended");
    if (res.status !== "appended") return;
    expect(res.records[0].offset).toBe(MDBOX_M1.length);
    expect(res.records[1].offset).toBe(MDBOX_M1.length + res.records[0].size);
    expect(res.fileSizeBytes).toBe(fs.statSync(p).size);
    const file = decodeDboxFile(fs.readFileSync(p));
    expect(file.messages.map((m) => m.offset)).toEqual([16, 135, 256, ...res.records.map((r) => r.offset)]);
    expect(fs.readFileSync(p).subarray(0, MDBOX_M1.length).equals(Buffer.from(MDBOX_M1))).toBe(true);
  });

  it("follows the rotation rule: first mail <, further mails <= rotate size", async () => {
    const size = MDBOX_M1.length; // 375
    const recordSize = 159; // 30 + 100 body + 29 metadata
    const p1 = await writeDboxFile(dir, "m.1", MDBOX_M1);
    expect(await appendMdboxMessages(p1, [message(1, 100)], { rotateSizeBytes: size + 100 })).toEqual({ status: "full" });
    // Room for exactly three: the 3rd lands when size + 2 records + 100 <= rotate.
    const rotate = size + 2 * recordSize + 100;
    const res = await appendMdboxMessages(p1, [message(1, 100), message(2, 100), message(3, 100), message(4, 100)], { rotateSizeBytes: rotate });
    expect(res).toMatchObject({ status: "appended", fileSizeBytes: size + 3 * recordSize });
    const p2 = await writeDboxFile(dir, "m.2", MDBOX_M1);
    const res2 = await appendMdboxMessages(p2, [message(1, 100), message(2, 100), message(3, 100)], { rotateSizeBytes: rotate - 1 });
    expect(res2).toMatchObject({ status: "appended", fileSizeBytes: size + 2 * recordSize });
  });

  it("skips files it must not touch", async () => {
    const p = await writeDboxFile(dir, "m.1", MDBOX_M1);
    expect(await appendMdboxMessages(path.join(dir, "m.9"), [message(1)])).toEqual({ status: "missing" });
    expect(await appendMdboxMessages(p, [message(1)], { expectedSizeBytes: 100 })).toEqual({ status: "size-mismatch" });
    fs.writeFileSync(path.join(dir, "m.2"), latin1("2 M20 C1\n"));
    expect(await appendMdboxMessages(path.join(dir, "m.2"), [message(1)])).toEqual({ status: "not-appendable" });
    fs.writeFileSync(path.join(dir, "m.3"), latin1("garbage"));
    expect(await appendMdboxMessages(path.join(dir, "m.3"), [message(1)]).catch((e: unknown) => e)).toBeInstanceOf(MailCorruptedError);
    expect(fs.readFileSync(p).equals(Buffer.from(MDBOX_M1))).toBe(true);
  });

  it("respects another holder's flock, as Dovecot's purge and saves do", async () => {
    const p = await writeDboxFile(dir, "m.1", MDBOX_M1);
    const fd = fs.openSync(p, "r");
    try {
      expect(await tryFlockExclusive(fd, p)).toBe(true);
      expect(await appendMdboxMessages(p, [message(1)])).toEqual({ status: "locked" });
      await unlockFlock(fd, p);
      expect((await appendMdboxMessages(p, [message(1)])).status).toBe("appended");
      // The append's own lock is gone with its descriptor.
      expect(await tryFlockExclusive(fd, p)).toBe(true);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe("listing", () => {
  it("lists u.N or m.N by id, skipping temp files and other names", async () => {
    for (const n of ["u.10", "u.2", "u.1", "m.3", "u.0", "u.x", "u.1a", "u.99999999999", ".temp.1.P1Q0M0.vm", "dovecot.index.log", "m.1"]) {
      fs.writeFileSync(path.join(dir, n), "");
    }
    expect(await listDboxFiles(dir, "sdbox")).toEqual([
      { name: "u.1", id: 1 },
      { name: "u.2", id: 2 },
      { name: "u.10", id: 10 },
    ]);
    expect((await listDboxFiles(dir, "mdbox")).map((e) => e.id)).toEqual([1, 3]);
    const err = await listDboxFiles(path.join(dir, "nope"), "sdbox").catch((e: unknown) => e);
    expect((err as MailstoreError).code).toBe("NOT_FOUND");
  });
});

describe("hostile sizes", () => {
  it("a huge M in the header line does not make readDboxMessageAt allocate it", async () => {
    const p = path.join(dir, "m.1");
    fs.writeFileSync(p, latin1("2 Mffffffffff C1\n\x01\x02N          0000000000000001\nx\n\x01\x03\n\n"));
    const err = await readDboxMessageAt(p, 17).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MailCorruptedError);
    expect((err as MailCorruptedError).offset).toBe(17);
  });
});
