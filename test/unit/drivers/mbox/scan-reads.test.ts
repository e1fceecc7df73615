/**
 * How many bytes a scan of an mbox file reads: each about once. A scan
 * searches past its window's end for the next message's From_ line, then
 * comes back to the message's header; the window used to be read again from
 * there (and once more for the From_ line), 3.3x the file per scan.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { scanMbox } from "../../../../src/drivers/mbox/scan.js";
import { bufferSource, FileSource, FILE_SOURCE_WINDOW_BYTES } from "../../../../src/drivers/mbox/source.js";

/** Bytes FileSource read (it reads through readFullyAt). */
const reads = vi.hoisted(() => ({ bytes: 0 }));
vi.mock("../../../../src/shared/read-at.js", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../../../src/shared/read-at.js")>();
  return {
    ...real,
    readFullyAt: (...args: Parameters<typeof real.readFullyAt>) => {
      const got = real.readFullyAt(...args);
      reads.bytes += got;
      return got;
    },
  };
});

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mbox-scan-reads-"));
  reads.bytes = 0;
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** ~2.3 KiB messages of varying size, so that many straddle a window's end; one with Dovecot's headers and a Content-Length. */
function sampleMbox(count: number): Buffer {
  let text = "";
  for (let i = 1; i <= count; i++) {
    text += `From a${i}@b  Mon Nov 23 09:40:${String(i % 60).padStart(2, "0")} 2026\n`;
    if (i === 1) text += "X-IMAPbase: 1700000000 0000000000 foo\n";
    text += `Subject: ${i}\nStatus: ${i % 2 ? "RO" : "O"}\n`;
    if (i % 7 === 0) text += `X-UID: ${i}\nX-Keywords: foo\n`;
    const body = "Lorem ipsum dolor sit amet.\n".repeat(70 + (i % 13)) + (i % 5 === 0 ? "From a body line\n" : "");
    if (i % 9 === 0) text += `Content-Length: ${body.length}\n`;
    text += `\n${body}\n`;
  }
  return Buffer.from(text, "latin1");
}

it("a scan of a file of many windows reads each byte about once, and finds what a scan in memory finds", () => {
  const data = sampleMbox(400);
  expect(data.length).toBeGreaterThan(12 * FILE_SOURCE_WINDOW_BYTES);
  const file = path.join(dir, "inbox");
  fs.writeFileSync(file, data);
  const expected = [...scanMbox(bufferSource(data), { path: file })];
  const fd = fs.openSync(file, "r");
  try {
    const got = [...scanMbox(new FileSource(fd), { path: file })];
    expect(got).toEqual(expected);
    expect(got).toHaveLength(400);
  } finally {
    fs.closeSync(fd);
  }
  // Was 3.3x the file: each window read again at the From_ line and the header of the message straddling its end.
  expect(reads.bytes).toBeGreaterThanOrEqual(data.length);
  expect(reads.bytes).toBeLessThanOrEqual(data.length + FILE_SOURCE_WINDOW_BYTES);
});

it("a message larger than the window still scans as in memory", () => {
  const big = "x".repeat(100) + "\n";
  const text =
    "From a@b  Mon Nov 23 09:40:07 2026\nSubject: 1\n\none\n\n" +
    `From a@b  Mon Nov 23 09:40:08 2026\nSubject: 2\n\n${big.repeat(2000)}\n` +
    "From a@b  Mon Nov 23 09:40:09 2026\nSubject: 3\nX-UID: 9\n\nthree\n";
  const data = Buffer.from(text, "latin1");
  const file = path.join(dir, "big");
  fs.writeFileSync(file, data);
  const fd = fs.openSync(file, "r");
  try {
    expect([...scanMbox(new FileSource(fd, 4096), { path: file })]).toEqual([...scanMbox(bufferSource(data), { path: file })]);
  } finally {
    fs.closeSync(fd);
  }
});
