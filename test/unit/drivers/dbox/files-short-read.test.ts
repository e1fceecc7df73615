/**
 * DboxMessageReader when the file is shorter than the size it holds: cut
 * after the reader opened it (a rollback, a broken disk, a hand), or with a
 * message header claiming more than the file has. Every read goes through
 * a counting readFullyAt, so a reader that asks for the same missing bytes
 * again and again fails here after a bounded number of reads instead of
 * hanging the run (a synchronous loop would block vitest's own timeout).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const reads = vi.hoisted(() => ({ count: 0, max: 1000 }));
vi.mock("../../../../src/shared/read-at.js", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../../../src/shared/read-at.js")>();
  return {
    ...real,
    readFullyAt(fd: number, buf: Uint8Array, position: number, length: number): number {
      if (++reads.count > reads.max) throw new Error(`read loop: more than ${reads.max} reads (position ${position}, length ${length})`);
      return real.readFullyAt(fd, buf, position, length);
    },
  };
});

import { MailCorruptedError } from "../../../../src/shared/errors.js";
import { DboxMessageReader, readDboxMessageAt, TransientReadWindow, writeDboxFile } from "../../../../src/drivers/dbox/files.js";
import { decodeDboxFile } from "../../../../src/drivers/dbox/file-format.js";
import { openStorage } from "../../../../src/index.js";
import { MDBOX_M1 } from "./fixtures.js";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "dbox-short-read-"));
  reads.count = 0;
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const latin1 = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));

/** Runs `read` expecting a MailCorruptedError at `path`, at or after `offset`, within a few reads. */
function expectCorrupted(read: () => unknown, where: { path: string; offset: number }, what: string): MailCorruptedError {
  reads.count = 0;
  let err: unknown;
  try {
    read();
  } catch (e) {
    err = e;
  }
  expect(err, what).toBeInstanceOf(MailCorruptedError);
  const corrupted = err as MailCorruptedError;
  expect(corrupted.path, what).toBe(where.path);
  expect(corrupted.offset, what).toBeGreaterThanOrEqual(where.offset);
  expect(reads.count, what).toBeLessThan(10);
  return corrupted;
}

describe("a dbox file shorter than the reader thinks", () => {
  it("cut after the reader opened it: every cut inside the last message is MailCorruptedError naming file and offset, with or without a size hint or read-ahead", () => {
    const whole = decodeDboxFile(MDBOX_M1);
    const last = whole.messages[2];
    for (const cut of [last.offset + 10, last.offset + 40, last.offset + 60, last.offset + last.size - 1]) {
      for (const hint of [undefined, 40, last.size]) {
        for (const key of [undefined, {}]) {
          const p = path.join(dir, `m.${cut}`);
          fs.writeFileSync(p, MDBOX_M1);
          const reader = new DboxMessageReader();
          try {
            // Opens the file (its size taken), then walks on to the last message.
            reader.read(p, whole.messages[0].offset, whole.messages[0].size, key);
            reader.read(p, whole.messages[1].offset, whole.messages[1].size, key);
            fs.truncateSync(p, cut);
            // A new read-ahead key (a newer map state): the old key's window, read before the cut, may serve the bytes it holds.
            const newKey = key ? {} : undefined;
            const what = `cut ${cut}, hint ${hint}, ${key ? "read-ahead" : "no read-ahead"}`;
            expectCorrupted(() => reader.read(p, last.offset, hint, newKey), { path: p, offset: last.offset }, what);
            expectCorrupted(() => reader.readBody(p, last.offset, hint, newKey), { path: p, offset: last.offset }, `readBody, ${what}`);
            // Through a fetch's own window (transient bodies), filled before the cut.
            const window = new TransientReadWindow();
            fs.writeFileSync(p, MDBOX_M1);
            reader.forget();
            reader.readBody(p, whole.messages[0].offset, whole.messages[0].size, key, window);
            reader.readBody(p, whole.messages[1].offset, whole.messages[1].size, key, window);
            fs.truncateSync(p, cut);
            expectCorrupted(() => reader.readBody(p, last.offset, hint, newKey, window), { path: p, offset: last.offset }, `readBody through a window, ${what}`);
            // What is still there still reads.
            expect(reader.read(p, whole.messages[0].offset).size).toBe(whole.messages[0].size);
          } finally {
            reader.forget();
          }
        }
      }
    }
  });

  it("cut, then appended to again (a rollback's cut, then the next save's append), or opened in the middle of an append: the reader sees the whole message", () => {
    const whole = decodeDboxFile(MDBOX_M1);
    const last = whole.messages[2];
    for (const cut of [last.offset + 10, last.offset + 40, last.offset + last.size - 1]) {
      for (const seen of [true, false]) {
        const what = `cut ${cut}, ${seen ? "cut seen by a read" : "opened while cut"}`;
        const p = path.join(dir, `m.${cut}.${seen}`);
        fs.writeFileSync(p, seen ? MDBOX_M1 : MDBOX_M1.subarray(0, cut));
        const reader = new DboxMessageReader();
        try {
          reader.read(p, whole.messages[0].offset);
          if (seen) {
            fs.truncateSync(p, cut);
            expectCorrupted(() => reader.read(p, last.offset), { path: p, offset: last.offset }, what);
          }
          fs.writeFileSync(p, MDBOX_M1);
          reads.count = 0;
          expect(reader.read(p, last.offset, last.size).size, what).toBe(last.size);
          expect(reader.readBody(p, last.offset).size, what).toBe(last.size);
          expect(reads.count, what).toBeLessThan(10);
        } finally {
          reader.forget();
        }
      }
    }
  });

  it("a message header whose size field claims more than the file has: MailCorruptedError at its offset, nothing allocated for it", async () => {
    const p = path.join(dir, "m.1");
    for (const size of ["0000000000000100", "000FFFFFFFFFFFFF", "FFFFFFFFFFFFFFFF"]) {
      fs.writeFileSync(p, latin1(`2 M1e C1\n\x01\x02N          ${size}\nx\n\x01\x03\n\n`));
      reads.count = 0;
      const err = await readDboxMessageAt(p, 9).catch((e: unknown) => e);
      expect(err, size).toBeInstanceOf(MailCorruptedError);
      expect((err as MailCorruptedError).offset, size).toBe(9);
      expect(reads.count, size).toBeLessThan(10);
    }
  });
});

describe("fetch of a cut dbox file", () => {
  const body = (i: number) => `Subject: ${i}\n\n`.padEnd(200, "x") + "\n";

  it("mdbox: an m.N cut under an open mailbox (its reader holding the file) fails the fetch with MailCorruptedError naming m.N", async () => {
    const storage = openStorage(`mdbox:${dir}/mail`, { fsync: "never" });
    try {
      const box = await storage.openMailbox("INBOX");
      await box.transaction().append({ body: body(1) }).append({ body: body(2) }).append({ body: body(3) }).commit();
      expect(Buffer.from(await box.readMessage(1)).toString()).toBe(body(1));
      const m1 = path.join(dir, "mail/storage/m.1");
      const size = fs.statSync(m1).size;
      fs.truncateSync(m1, size - 150); // inside message 3's body
      reads.count = 0;
      const err = await box.readMessage(3).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MailCorruptedError);
      expect((err as MailCorruptedError).path).toBe(m1);
      expect((err as MailCorruptedError).offset).toBeGreaterThan(16);
      expect(reads.count).toBeLessThan(30); // three attempts (the backend retries after a map refresh)
      expect(Buffer.from(await box.readMessage(2)).toString()).toBe(body(2));
      await box.close();
    } finally {
      await storage.close();
    }
  });

  it("sdbox: a cut u.N fails the fetch with MailCorruptedError naming u.N", async () => {
    const storage = openStorage(`sdbox:${dir}/mail`, { fsync: "never" });
    try {
      const box = await storage.openMailbox("INBOX");
      await box.transaction().append({ body: body(1) }).append({ body: body(2) }).commit();
      const u2 = path.join(dir, "mail/mailboxes/INBOX/dbox-Mails/u.2");
      for (const cut of [fs.statSync(u2).size - 5, 100, 20]) {
        fs.truncateSync(u2, cut);
        const err = await box.readMessage(2).catch((e: unknown) => e);
        expect(err, `cut ${cut}`).toBeInstanceOf(MailCorruptedError);
        expect((err as MailCorruptedError).path, `cut ${cut}`).toBe(u2);
      }
      expect(Buffer.from(await box.readMessage(1)).toString()).toBe(body(1));
      await box.close();
    } finally {
      await storage.close();
    }
  });
});
