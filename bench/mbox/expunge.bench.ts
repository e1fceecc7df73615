import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { formatMboxMessage } from "../../src/drivers/mbox/write.js";
import { DoveadmRunner, measureNoops, settleWriteback, timeMailstore, workRatio } from "../dovecot.js";
import { fmt, versusDovecot } from "../util.js";

/**
 * Writes an mbox in Dovecot's own layout (X-IMAPbase, X-UID, Status,
 * X-Keywords padding, Content-Length — write.ts), so that neither side has
 * headers to add first: `count` messages of about `messageBytes`.
 */
export function writeDovecotLayoutMbox(file: string, count: number, messageBytes: number, uidValidity: number): number {
  const fd = fs.openSync(file, "w", 0o600);
  const filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\n";
  let total = 0;
  let chunk: Buffer[] = [];
  let chunkBytes = 0;
  try {
    for (let uid = 1; uid <= count; uid++) {
      let body = `From: Sender ${uid % 97} <s${uid % 97}@example.com>\nSubject: message ${uid}\nMessage-ID: <bench-${uid}@mailstore.example>\n\nBody ${uid}.\n`;
      if (uid % 50 === 0) body += "From the middle of a body line\n";
      while (body.length < messageBytes) body += filler;
      const bytes = formatMboxMessage({
        message: body,
        uid,
        flags: uid % 3 === 0 ? 0x08 : 0,
        sender: "bench@example.com",
        receivedTime: 1_780_000_000 + uid * 60,
        utcOffsetMinutes: 0,
        ...(uid === 1 ? { imapBase: { uidValidity, uidLast: count } } : {}),
      });
      chunk.push(bytes);
      chunkBytes += bytes.length;
      if (chunkBytes > 8 << 20) {
        fs.writeSync(fd, Buffer.concat(chunk));
        total += chunkBytes;
        chunk = [];
        chunkBytes = 0;
      }
    }
    fs.writeSync(fd, Buffer.concat(chunk));
    total += chunkBytes;
  } finally {
    fs.closeSync(fd);
  }
  return total;
}

/**
 * Expunging 1% of the messages (at random places) from a ~200 MB mbox,
 * whole processes side by side on identical copies of the same file, both
 * indexed beforehand (untimed): `doveadm expunge` against `mailstore
 * expunge`. Dovecot compacts in place; the engine writes the new file beside
 * and renames it (crash safety: rewrite.ts). Also the whole-process work
 * ratio: each tool's no-op (`mailbox status` of an empty mbox mailbox)
 * subtracted first.
 * @returns markdown table rows.
 */
export async function mboxExpungeBench(targetBytes = 200e6, messageBytes = 8000): Promise<string[]> {
  if (!DoveadmRunner.available()) return ["| mbox expunge 1% | (needs doveadm and root) | | |"];
  const count = Math.round(targetBytes / (messageBytes + 250));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-bench-mbox-expunge-"));
  fs.chmodSync(work, 0o755);
  const dovecot = new DoveadmRunner();
  try {
    const sides = ["dovecot", "engine"].map((side) => {
      const root = path.join(work, side);
      fs.mkdirSync(path.join(root, "mail"), { recursive: true });
      return { root, inbox: path.join(root, "inbox"), location: `mbox:${root}/mail:INBOX=${root}/inbox` };
    });
    const bytes = writeDovecotLayoutMbox(sides[0].inbox, count, messageBytes, 1_780_000_000);
    fs.copyFileSync(sides[0].inbox, sides[1].inbox);
    dovecot.chown(sides[0].root);
    dovecot.run(sides[0].location, ["mailbox", "status", "messages", "INBOX"]);
    // `mailstore mailbox status` reads only; a resync builds the index.
    timeMailstore(["-l", sides[1].location, "force-resync", "INBOX"]);

    // The same 1% of UIDs on both sides, spread over the file.
    let seed = 42;
    const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const uids = new Set<number>();
    while (uids.size < Math.max(1, Math.round(count / 100))) uids.add(1 + Math.floor(rand() * count));
    const list = [...uids].sort((a, b) => a - b).join(",");

    const expunge = ["expunge", "mailbox", "INBOX", "uid", list];
    settleWriteback();
    const d = dovecot.run(sides[0].location, expunge);
    settleWriteback();
    const e = timeMailstore(["-l", sides[1].location, ...expunge]);
    const sizes = sides.map((s) => fs.statSync(s.inbox).size);
    const noop = measureNoops(dovecot, (dir) => `mbox:${dir}/mail:INBOX=${dir}/inbox`);
    return [
      `| mbox: expunge 1% (${uids.size} of ${count.toLocaleString("en")} messages) from a ${fmt(bytes / 1e6)} MB mbox | engine ${fmt(e)} s | Dovecot ${fmt(d)} s | ${versusDovecot(e, d)}; work ratio (no-ops ${fmt(noop.engine)} / ${fmt(noop.doveadm)} s subtracted) ${fmt(workRatio(e, d, noop))}× (files after: ${fmt(sizes[1] / 1e6)} / ${fmt(sizes[0] / 1e6)} MB) |`,
    ];
  } finally {
    dovecot.cleanup();
    fs.rmSync(work, { recursive: true, force: true });
  }
}
