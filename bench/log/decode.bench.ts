import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ByteWriter } from "../../src/log/bytes.js";
import { encodeTransactionInto } from "../../src/log/encode-file.js";
import { parseLogBytes, scanTransactions } from "../../src/log/file.js";
import { decodeLogHeader, encodeLogHeader } from "../../src/log/header.js";
import type { LogRecord } from "../../src/log/types.js";
import { fmt, measure, timeCommand } from "../util.js";

/**
 * Decode throughput of a log with >= 1M records, shaped like a busy mailbox:
 * each transaction appends a message with its cache ext record, then flags
 * and a keyword on an earlier one.
 */
export async function decodeBench(recordsWanted = 1_000_000): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-bench-"));
  const file = path.join(dir, "dovecot.index.log");
  const out = new ByteWriter(64 << 20);
  out.raw(encodeLogHeader({ indexId: 1, fileSeq: 1, prevFileSeq: 0, prevFileOffset: 0, createStamp: 1, initialModseq: 1n }));
  let records = 0;
  for (let uid = 1; records < recordsWanted; uid++) {
    const tx: LogRecord[] = [
      { type: "append", external: true, sync: false, messages: [{ uid, flags: 0 }] },
      { type: "ext-intro", external: true, sync: false, intros: [{ extId: 0, resetId: 1, hdrSize: 0, recordSize: 4, recordAlign: 4, flags: 1, name: "" }] },
      { type: "ext-rec", external: true, sync: false, recordSize: 4, updates: [{ uid, data: new Uint8Array([uid & 255, 0, 0, 0]) }] },
      { type: "flag-update", external: false, sync: false, updates: [{ uid1: Math.max(1, uid - 5), uid2: uid, addFlags: 8, removeFlags: 0, modseqIncFlag: 0 }] },
      { type: "keyword-update", external: false, sync: false, modifyType: "add", name: "$Label1", ranges: [{ uid1: uid, uid2: uid }] },
    ];
    encodeTransactionInto(tx, out);
    records += tx.length + 1; // + boundary
  }
  const bytes = out.result();
  fs.writeFileSync(file, bytes);
  const megabytes = bytes.length / 1e6;

  let count = 0;
  // Streaming: each transaction is decoded, handed to a callback and dropped,
  // as a replay folds it into state. This is the engine's read path.
  const streaming = await measure("decode-stream", () => {
    const data = fs.readFileSync(file);
    count = 0;
    scanTransactions(data, decodeLogHeader(data, file), file, () => void count++);
  }, { minSamples: 5, maxTime: 8 });
  // Retaining: parseLogBytes keeps every decoded record (dump, tests); GC-bound.
  const retaining = await measure("decode-retain", () => {
    parseLogBytes(fs.readFileSync(file), file);
  }, { minSamples: 3, maxTime: 8 });
  const catSeconds = timeCommand("cat", [file]);
  fs.rmSync(dir, { recursive: true, force: true });
  const row = (label: string, r: { meanSeconds: number; rme: number }) =>
    `| log decode, ${label}: ${records.toLocaleString("en")} records, ${fmt(megabytes)} MB, ${count.toLocaleString("en")} transactions | ` +
    `${fmt(r.meanSeconds)} s ±${fmt(r.rme, 2)}% | ${fmt(records / r.meanSeconds / 1e6)} M records/s, ${fmt(megabytes / r.meanSeconds)} MB/s | ` +
    `${fmt(r.meanSeconds / catSeconds)}× the time of \`cat\` on the same file (${fmt(catSeconds * 1000)} ms, whole process) |`;
  return [row("streaming (read file + decode every record)", streaming), row("retaining every record (parseLogBytes)", retaining)];
}
