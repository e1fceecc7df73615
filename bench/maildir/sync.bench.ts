import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openStorage } from "../../src/index.js";
import { DoveadmRunner, measureNoops, settleWriteback, timeMailstore, workRatio, type Noops } from "../dovecot.js";
import { fmt, median } from "../util.js";

/**
 * Maildir sync side by side with Dovecot on a 100,000-file Maildir that
 * Dovecot indexed once: a refresh when nothing changed (Dovecot's quick
 * check: two stat()s against the `maildir` index header), and after 1 % of
 * the files were renamed by a "mail client" to add \Seen (a full cur/ scan
 * and 1,000 flag changes logged). Dovecot's side is a whole
 * `doveadm mailbox status` process, which opens the index and syncs; the
 * engine's is `Mailbox.refresh()` on an open mailbox that has synced before
 * (dovecot-uidlist parsed, file names known), and a cold open + refresh in a
 * fresh Storage (index loaded, uidlist parsed, directories read), and a whole
 * `mailstore mailbox status` process, the like of doveadm's. Each run renames
 * its own 1 % of the files, so every side does the same work.
 *
 * The embedded figures are set against the whole doveadm process; the
 * whole-process figure is the *work* ratio, as in vs-dovecot: each tool's
 * no-op (`mailbox status` of an empty Maildir mailbox) is subtracted from
 * its medians first.
 */
export async function maildirSyncBench(count = 100_000): Promise<string[]> {
  if (!DoveadmRunner.available()) return ["| maildir sync | (needs doveadm and root) | | |"];
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-bench-maildir-"));
  fs.chmodSync(work, 0o755);
  const root = path.join(work, "Maildir");
  const location = `maildir:${root}`;
  const dovecot = new DoveadmRunner();
  const rows: string[] = [];
  try {
    const noop = measureNoops(dovecot, (dir) => `maildir:${dir}`);
    rows.push(`| maildir: no-op (\`mailbox status\` of an empty mailbox, median of 5) | engine ${fmtMs(noop.engine)} | Dovecot ${fmtMs(noop.doveadm)} | subtracted from the whole-process medians |`);
    const built = writeMaildir(root, count);
    dovecot.chown(work);
    const status = () => dovecot.run(location, ["mailbox", "status", "messages", "INBOX"]);
    const indexSeconds = status();
    // Past Dovecot's one-second window, so its next sync writes a "clean" maildir header.
    await sleep(1100);
    status();
    rows.push(`| maildir: build ${count.toLocaleString("en")} files (${fmt(built.seconds)} s), Dovecot indexes them once | Dovecot ${fmt(indexSeconds)} s | | |`);

    const storage = openStorage(location);
    const box = await storage.openMailbox("INBOX");
    await box.refresh();
    const quiet = best(5, () => timeAsync(() => box.refresh()));
    const coldQuiet = best(3, () => timeAsync(async () => {
      const s = openStorage(location);
      await (await s.openMailbox("INBOX")).refresh();
      await s.close();
    }));
    // The embedded refreshes above ran as root (this process): a file they made (a rotated
    // log) would be root's, which doveadm, dropped to the store's user, cannot lock.
    dovecot.chown(work);
    // Whole processes after the build's writeback, not during it (settleWriteback).
    settleWriteback();
    const dovecotQuiet = medianOf(5, status);
    const engineStatus = () => timeMailstore(["-l", location, "mailbox", "status", "messages", "INBOX"]);
    const processQuiet = medianOf(5, engineStatus);
    rows.push(row("refresh, nothing changed", await quiet, await coldQuiet, processQuiet, dovecotQuiet, noop));

    // Disjoint 1 % sets, one per run and side, so that every run does the same work.
    const onePercent = (offset: number) => built.names.filter((_, k) => k % 100 === offset);
    // One earlier full sync (a single renamed file), as a server's open mailbox has had.
    renameAddSeen(root, [built.names[1]]);
    await box.refresh();
    let set = 2;
    const warm = await best(3, async () => {
      renameAddSeen(root, onePercent(set++));
      return timeAsync(() => box.refresh());
    });
    const seen = box.state.header.seenMessagesCount;
    const dovecotRenamed = medianOf(3, () => {
      renameAddSeen(root, onePercent(set++));
      dovecot.chown(work);
      settleWriteback();
      return status();
    });
    const cold = await best(3, async () => {
      renameAddSeen(root, onePercent(set++));
      const s2 = openStorage(location);
      const t = await timeAsync(async () => {
        const b = await s2.openMailbox("INBOX");
        await b.refresh();
      });
      await s2.close();
      return t;
    });
    const processRenamed = medianOf(3, () => {
      renameAddSeen(root, onePercent(set++));
      settleWriteback();
      return engineStatus();
    });
    rows.push(row(`refresh after ${(count / 100).toLocaleString("en")} files (1 %) renamed to add S`, warm, cold, processRenamed, dovecotRenamed, noop));
    if (seen !== (3 * count) / 100 + 1) throw new Error(`the renames were not logged (${seen} seen)`);
    await storage.close();
  } finally {
    dovecot.cleanup();
    fs.rmSync(work, { recursive: true, force: true });
  }
  return rows;
}

/** Ratios engine / Dovecot (below 1: the engine is faster). */
function row(label: string, open: number, cold: number, whole: number, dovecot: number, noop: Noops): string {
  return `| maildir 100k: ${label} | engine: ${fmtMs(open)} open mailbox, ${fmtMs(cold)} cold open + refresh, ${fmtMs(whole)} whole \`mailstore mailbox status\` process | Dovecot ${fmtMs(dovecot)} (whole doveadm process) | open: ${fmt(open / dovecot)}×, cold: ${fmt(cold / dovecot)}×, whole-process work ratio (no-ops subtracted): ${fmt(workRatio(whole, dovecot, noop))}× |`;
}

function fmtMs(seconds: number): string {
  return `${fmt(seconds * 1000)} ms`;
}

/** `count` messages straight into cur/, named as Dovecot names them. */
function writeMaildir(root: string, count: number): { names: string[]; seconds: number } {
  const t0 = process.hrtime.bigint();
  for (const d of ["cur", "new", "tmp"]) fs.mkdirSync(path.join(root, d), { recursive: true });
  const names: string[] = [];
  const secs = Math.floor(Date.now() / 1000) - count;
  for (let i = 0; i < count; i++) {
    const body = `From: sender${i % 97}@example.com\nTo: rcpt@example.org\nSubject: message ${i}\nMessage-ID: <bench-${i}@mailstore.example>\n\nBody of message ${i}.\n`;
    const name = `${secs + i}.M${i % 1_000_000}P${process.pid}.bench,S=${body.length},W=${body.length + 6}:2,`;
    fs.writeFileSync(path.join(root, "cur", name), body);
    names.push(name);
  }
  return { names, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

/** What a mail client does to mark messages read: rename `…:2,` to `…:2,S`. */
function renameAddSeen(root: string, names: readonly string[]): void {
  for (const name of names) fs.renameSync(path.join(root, "cur", name), path.join(root, "cur", `${name}S`));
}

async function timeAsync(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function best(runs: number, fn: () => Promise<number>): Promise<number> {
  let b = Infinity;
  for (let i = 0; i < runs; i++) b = Math.min(b, await fn());
  return b;
}

function medianOf(runs: number, fn: () => number): number {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push(fn());
  return median(xs);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
