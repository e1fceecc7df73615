import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect, it } from "vitest";
import { encodeTransaction } from "../../../src/log/encode-file.js";
import { encodeLogHeader } from "../../../src/log/header.js";
import { parseLogBytes } from "../../../src/log/file.js";
import { streamLog } from "../../../src/log/view.js";
import type { LogRecord } from "../../../src/log/types.js";

const ext = { external: true, sync: false };
const appendTx = (from: number, n: number): Uint8Array =>
  encodeTransaction([{ type: "append", ...ext, messages: Array.from({ length: n }, (_, i) => ({ uid: from + i, flags: 0 })) } as LogRecord], true);
// many small records: a framed transaction of flag updates, ~24 bytes each
const flagsTx = (n: number): Uint8Array =>
  encodeTransaction(Array.from({ length: n }, (_, i) => ({ type: "flag-update", external: false, sync: false,
    updates: [{ uid1: i + 1, uid2: i + 1, addFlags: 8, removeFlags: 0, modseqIncFlag: 0 }] }) as LogRecord), true);

it("a torn tail cut and rewritten while the chain is read: the scan stops where the file now ends, not at zeros past it (review of cold4)", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-lazy-tail-"));
  const prefix = path.join(dir, "dovecot.index");
  const h2 = { indexId: 0x65000000, fileSeq: 1, prevFileSeq: 0, prevFileOffset: 0, createStamp: 0x65000000, initialModseq: 1n };
  const log2 = Buffer.concat([encodeLogHeader(h2), appendTx(1, 10)]);
  fs.writeFileSync(prefix + ".log.2", log2);
  const h = { ...h2, fileSeq: 2, prevFileSeq: 1, prevFileOffset: log2.length };
  // .log: complete part ending past the first page
  const complete = Buffer.concat([encodeLogHeader(h), appendTx(11, 600)]);
  const sync = complete.length;
  expect(sync).toBeGreaterThan(4096);
  // torn tail left by a crashed writer: a transaction whose boundary says more than is there
  const torn = Buffer.from(appendTx(700, 800)).subarray(0, 9000 - sync + 800);
  fs.writeFileSync(prefix + ".log", Buffer.concat([complete, torn]));
  const sizeAtOpen = fs.statSync(prefix + ".log").size;

  // What the next writer writes at `sync` after cutting the torn tail: T, ending before sizeAtOpen.
  const T = flagsTx(200);
  expect(sync + T.length).toBeLessThanOrEqual(sizeAtOpen);
  expect(sync + T.length).toBeGreaterThan(8192);
  let fired = false;
  const simulateWriter = () => {
    if (fired) return;
    fired = true;
    const fd = fs.openSync(prefix + ".log", "r+");
    fs.ftruncateSync(fd, sync);
    // mid-pwrite: the kernel has copied (and extended i_size over) the part up to the page boundary
    fs.writeSync(fd, T, 0, 8192 - sync, sync);
    fs.closeSync(fd);
  };
  const midWrite = () => fs.readFileSync(prefix + ".log");

  try {
    let err: unknown;
    let summary;
    try {
      summary = streamLog(prefix, undefined, { onTransaction: () => simulateWriter() });
    } catch (e) { err = e; }
    // Control: the file as it is at that moment is a valid log with a torn tail; a whole read stops at `sync`.
    expect(parseLogBytes(midWrite(), prefix + ".log").syncOffset).toBe(sync);
    expect(err).toBeUndefined();
    expect(summary!.end.offset).toBe(sync);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
