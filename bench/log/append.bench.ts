import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { TransactionLog, type FsyncMode } from "../../src/log/log.js";
import type { LogRecord } from "../../src/log/types.js";
import { fmt } from "../util.js";

/**
 * Append throughput: transactions/s of sequential single-transaction commits
 * (append + flag update, as a small IMAP APPEND makes), each taking the fcntl
 * lock and catching up, with and without fdatasync per commit; and 64
 * concurrent committers sharing group fsyncs.
 */
export async function appendBench(): Promise<string[]> {
  const rows: string[] = [];
  for (const [mode, count, concurrency] of [["never", 20000, 1], ["always", 2000, 1], ["batch", 5000, 64]] as Array<[FsyncMode, number, number]>) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-bench-"));
    const log = TransactionLog.open(path.join(dir, "dovecot.index"), { create: {}, fsync: mode, rotate: {} });
    let uid = 0;
    const tx = (): LogRecord[] => {
      uid++;
      return [
        { type: "append", external: true, sync: false, messages: [{ uid, flags: 0 }] },
        { type: "flag-update", external: false, sync: false, updates: [{ uid1: uid, uid2: uid, addFlags: 8, removeFlags: 0, modseqIncFlag: 0 }] },
      ];
    };
    const t0 = process.hrtime.bigint();
    for (let done = 0; done < count; done += concurrency) {
      await Promise.all(Array.from({ length: concurrency }, () => log.append(tx())));
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
    rows.push(`| log append, fsync=${mode}${concurrency > 1 ? `, ${concurrency} concurrent committers` : ""}, ${count.toLocaleString("en")} transactions | ${fmt(seconds)} s | ${fmt(count / seconds)} transactions/s | ${fmt((seconds / count) * 1e6)} µs per commit |`);
  }
  return rows;
}
