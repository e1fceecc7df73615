import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { scanStorageFiles } from "../../../../src/drivers/mdbox/rebuild-scan.js";
import type { MdboxPaths } from "../../../../src/drivers/mdbox/paths.js";
import { decodeDboxFileHeader } from "../../../../src/drivers/dbox/file-header.js";
import { encodeDboxFile, iterateDboxMessages } from "../../../../src/drivers/dbox/file-format.js";
import { MailCorruptedError } from "../../../../src/shared/errors.js";
import { MDBOX_M1 } from "../dbox/fixtures.js";

/** The scan reads files through a window; these compare it with a decode of the whole file. */
let dir: string | undefined;
afterEach(() => {
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Scans one m.1 holding `bytes`. */
async function scanBytes(bytes: Uint8Array) {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "rebuild-scan-"));
  const file = path.join(dir, "m.1");
  fs.writeFileSync(file, bytes);
  const paths = { listFiles: async () => [{ fileId: 1, path: file, alt: false }] } as unknown as MdboxPaths;
  const { messages, broken } = await scanStorageFiles(paths);
  // The columns as one object per message, for comparisons.
  const list = Array.from({ length: messages.count }, (_, i) => ({
    offset: messages.offsets[i], size: messages.sizes[i], guidKey: messages.guidHex(i), origMailbox: messages.origMailbox(i),
  }));
  return { messages: list, broken };
}

/** What a whole-file decode finds: {offset, size} of each message before the first bad one, and that one's offset. */
function reference(bytes: Uint8Array): { messages: Array<{ offset: number; size: number }>; brokenAt: number | undefined } {
  const messages: Array<{ offset: number; size: number }> = [];
  let at: number | undefined;
  try {
    const { header, headerSize } = decodeDboxFileHeader(bytes);
    at = headerSize;
    for (const m of iterateDboxMessages(bytes, headerSize, header.msgHeaderSize)) {
      messages.push({ offset: m.offset, size: m.size });
      at = m.offset + m.size;
    }
    return { messages, brokenAt: undefined };
  } catch (err) {
    if (!(err instanceof MailCorruptedError)) throw err;
    return { messages, brokenAt: at ?? 0 };
  }
}

async function expectLikeWholeFile(bytes: Uint8Array): Promise<void> {
  const want = reference(bytes);
  const got = await scanBytes(bytes);
  expect(got.messages.map((m) => ({ offset: m.offset, size: m.size }))).toEqual(want.messages);
  expect(got.broken.map((b) => b.offset)).toEqual(want.brokenAt === undefined ? [] : [want.brokenAt]);
}

describe("rebuild scan of m.N files", () => {
  it("finds every message of a file Dovecot wrote, with its GUID and original mailbox", async () => {
    const got = await scanBytes(MDBOX_M1);
    expect(got.broken).toEqual([]);
    expect(got.messages.map((m) => [m.guidKey, m.origMailbox])).toEqual([
      ["507364287709046b8135000083ecc375", "INBOX"],
      ["4e35b6297709046b8335000083ecc375", "INBOX"],
      ["d8284206d509046b1d38000083ecc375", "INBOX"],
    ]);
  });

  it("a GUID that is not 32 hex digits is keyed by the last 16 bytes of its SHA-1, as Dovecot's guid extension stores it", async () => {
    const guid = "<not hex>@example.org";
    const bytes = encodeDboxFile({
      header: { msgHeaderSize: 30, createStamp: 1, unknownItems: [] },
      messages: [{ body: new Uint8Array(3), metadata: [{ key: "G", value: guid }] }, { body: new Uint8Array(3), metadata: [{ key: "G", value: "" }] }],
    });
    const got = await scanBytes(bytes);
    expect(got.messages.map((m) => m.guidKey)).toEqual([createHash("sha1").update(guid).digest("hex").slice(-32)]);
    expect(got.broken.map((b) => b.reason)).toEqual(["message is missing GUID"]);
  });

  it("cut anywhere, keeps the messages before the cut and reports the one it cuts", async () => {
    for (let length = 0; length < MDBOX_M1.length; length++) await expectLikeWholeFile(MDBOX_M1.subarray(0, length));
  });

  it("reads files larger than its window, with bodies and metadata across window edges", async () => {
    const messages = Array.from({ length: 40 }, (_, i) => ({
      // Sizes around the window's 256 KiB, and one far above it.
      body: new Uint8Array(i === 7 ? 700_000 : 9_000 + i * 4_099).fill(0x61),
      // Every third block is longer than the window reads ahead for one (4 KiB).
      metadata: [{ key: "G", value: i.toString(16).padStart(32, "0") }, { key: "B", value: "Trash" }, { key: "R", value: "6b040977" }, ...(i % 3 === 0 ? [{ key: "X", value: "x".repeat(9_000) }] : [])],
    }));
    const bytes = encodeDboxFile({ header: { msgHeaderSize: 30, createStamp: 0x6b040977, unknownItems: [] }, messages });
    await expectLikeWholeFile(bytes);
    const got = await scanBytes(bytes);
    expect(got.messages.map((m) => m.origMailbox)).toEqual(messages.map(() => "Trash"));
    // Cut inside the large body and inside a later metadata block.
    await expectLikeWholeFile(bytes.subarray(0, got.messages[7].offset + 500_000));
    await expectLikeWholeFile(bytes.subarray(0, got.messages[20].offset + got.messages[20].size - 3));
  });

  it("walks every file in one pass: a file cut short keeps its messages before the cut, and the files after it are read whole", async () => {
    // One scan loop serves every file (scanFiles): nothing of one file's walk may leak into the next.
    const file = (n: number, body: number) => encodeDboxFile({
      header: { msgHeaderSize: 30, createStamp: 1, unknownItems: [] },
      messages: Array.from({ length: n }, (_, i) => ({
        body: new Uint8Array(body).fill(0x63),
        metadata: [{ key: "G", value: (body * 1000 + i).toString(16).padStart(32, "0") }, { key: "B", value: body === 2_000 ? "Sent" : "INBOX" }],
      })),
    });
    const first = file(50, 1_000);
    const whole = file(40, 2_000);
    const cutAt = reference(whole).messages[25].offset + 40;
    const last = file(30, 3_000);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rebuild-scan-"));
    const files = [first, whole.subarray(0, cutAt), last].map((bytes, k) => {
      const p = path.join(dir!, `m.${k + 1}`);
      fs.writeFileSync(p, bytes);
      return { fileId: k + 1, path: p, alt: false };
    });
    const paths = { listFiles: async () => files } as unknown as MdboxPaths;
    const { messages, broken, highestFileId } = await scanStorageFiles(paths);
    const perFile = [1, 2, 3].map((id) => Array.from({ length: messages.count }, (_, i) => i).filter((i) => messages.fileIds[i] === id));
    expect(perFile.map((l) => l.length)).toEqual([50, 25, 30]);
    expect(broken).toEqual([{ fileId: 2, path: files[1].path, offset: cutAt - 40, reason: expect.any(String) }]);
    expect(highestFileId).toBe(3);
    expect(perFile[2].map((i) => messages.guidHex(i))).toEqual(Array.from({ length: 30 }, (_, i) => (3_000_000 + i).toString(16).padStart(32, "0")));
    expect(perFile[1].map((i) => messages.origMailbox(i))).toEqual(Array.from({ length: 25 }, () => "Sent"));
    expect(perFile[2].map((i) => messages.origMailbox(i))).toEqual(Array.from({ length: 30 }, () => "INBOX"));
  });

  it("a metadata value that is not what its key needs ends the file there, as a whole-file decode does", async () => {
    const messages = Array.from({ length: 200 }, (_, i) => ({
      body: new Uint8Array(3_000).fill(0x62),
      metadata: [{ key: "G", value: i.toString(16).padStart(32, "0") }, { key: "R", value: i === 150 ? "not hex" : "6b040977" }],
    }));
    const bytes = encodeDboxFile({ header: { msgHeaderSize: 30, createStamp: 1, unknownItems: [] }, messages });
    await expectLikeWholeFile(bytes);
    expect((await scanBytes(bytes)).messages).toHaveLength(150);
  });

  it("a GUID in capitals is keyed by its lowercase hex, as Dovecot's guid extension stores it", async () => {
    const bytes = encodeDboxFile({
      header: { msgHeaderSize: 30, createStamp: 1, unknownItems: [] },
      messages: [{ body: new Uint8Array(3), metadata: [{ key: "G", value: "ABCDEF00000000000000000000000001" }] }],
    });
    const got = await scanBytes(bytes);
    expect(got.messages[0].guidKey).toBe("abcdef00000000000000000000000001");
  });
});
