/**
 * Storage.hasIndex opens a mailbox's backend for its index prefix and must
 * close it again: an mbox backend holds a reference on the file's shared
 * descriptor (mbox-file.ts), so one never closed kept the descriptor open
 * after the mailbox itself was closed. An import asks it of every source
 * mailbox, and ran out of descriptors (EMFILE) with more mbox folders than
 * the open-file limit; a server's replication asks it for ever.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { openStorage } from "../../../src/index.js";

const REPO = path.resolve(__dirname, "../../..");
const BIN = path.join(REPO, "bin/mailstore.js");
let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), "has-index-fds-")); });
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const openFds = () => fs.readdirSync("/proc/self/fd").length;

/** An mbox location with `count` folders of one message each (and an empty INBOX). */
function mboxSource(count: number): string {
  const root = path.join(dir, "src");
  fs.mkdirSync(root);
  fs.writeFileSync(path.join(root, "inbox"), "");
  for (let i = 0; i < count; i++) fs.writeFileSync(path.join(root, `f${i}`), `From a@example.org Mon Dec  7 10:00:00 2026\nSubject: ${i}\n\nbody ${i}\n\n`);
  return `mbox:${root}:INBOX=${root}/inbox`;
}

/** The paths this process has open under `root`. */
function openUnder(root: string): string[] {
  const paths: string[] = [];
  for (const fd of fs.readdirSync("/proc/self/fd")) {
    try {
      paths.push(fs.readlinkSync(`/proc/self/fd/${fd}`));
    } catch (err) {
      // The directory's own descriptor, closed once read.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  return paths.filter((p) => p.startsWith(root + "/"));
}

it("leaves no mbox descriptor open: hasIndex, then opening, reading and closing each mailbox, unindexed and indexed", async () => {
  const before = openFds();
  const storage = openStorage(mboxSource(40));
  const root = path.join(dir, "src");
  try {
    const names = (await storage.listMailboxes()).filter((n) => n !== "INBOX");
    expect(names).toHaveLength(40);
    for (const indexed of [false, true]) {
      for (const name of names) {
        expect(await storage.hasIndex(name)).toBe(indexed);
        const box = await storage.openMailbox(name);
        try {
          await box.refresh();
          expect(Buffer.from(await box.readMessage(1)).toString()).toContain(`Subject: ${name.slice(1)}\n`);
        } finally {
          await box.close();
        }
      }
      // The storage keeps the logs of the last 16 closed mailboxes open (closed-index-cache.ts), and nothing else.
      const open = openUnder(root);
      expect(open.filter((p) => !p.endsWith("/dovecot.index.log")), indexed ? "indexed" : "unindexed").toEqual([]);
      expect(open.length).toBeLessThanOrEqual(16);
    }
  } finally {
    await storage.close();
  }
  expect(openFds()).toBe(before);
});

it("imports more mbox folders than the process may open files", () => {
  const source = mboxSource(100);
  // 64 descriptors: node's own (~20) and one mailbox's at a time fit; one left open per folder does not.
  const r = spawnSync("bash", ["-c", 'ulimit -n 64 && exec "$0" "$@"', process.execPath, BIN, "-l", `sdbox:${dir}/dst`, "import", source], { encoding: "utf8" });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  expect(r.stdout.split("\n").filter((l) => /^f\d+: 1 message \(/.test(l))).toHaveLength(100);
}, 60_000);
