/**
 * Stale files in a Maildir's tmp/, with Dovecot's rule (tmp-cleanup.ts):
 * tmp/ is scanned when its atime is older than mail_temp_scan_interval
 * (unless atime > ctime + 36 h), and a scan deletes what has a ctime more
 * than 36 h old. A file's ctime cannot be set back, so "old" files are made
 * by moving the clock forward (`nowSecs`) rather than the files back.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cleanupMaildirTmp, MAILDIR_TMP_DELETE_SECS } from "../../../../src/drivers/maildir/tmp-cleanup.js";
import { MaildirStorageBackend } from "../../../../src/drivers/maildir/storage-backend.js";
import { Mailbox } from "../../../../src/api/mailbox.js";

const DAY = 24 * 60 * 60;
const secs = (ms: number) => Math.floor(ms / 1000);

/**
 * Writes `file` again until its ctime is in a later second than `after`'s.
 * The file system's clock is coarser than Date.now() and may lag it, so
 * waiting for the wall clock's next second is not enough.
 */
async function writeInLaterSecond(file: string, data: string, after: string): Promise<void> {
  const first = secs(fs.statSync(after).ctimeMs);
  for (;;) {
    fs.writeFileSync(file, data);
    if (secs(fs.statSync(file).ctimeMs) > first) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("Maildir tmp/ cleanup (Dovecot's rule)", () => {
  let root: string;
  let tmp: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-tmpclean-"));
    tmp = path.join(root, "tmp");
    fs.mkdirSync(tmp);
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  /** tmp/'s atime set `ago` seconds back (its ctime becomes now). */
  const lastScanned = (agoSecs: number) => {
    const t = Date.now() / 1000 - agoSecs;
    fs.utimesSync(tmp, t, t);
  };

  it("deletes a file older than 36 h, keeps a younger one, and one whose mtime/atime only look old", async () => {
    fs.writeFileSync(path.join(tmp, "old"), "x");
    await writeInLaterSecond(path.join(tmp, "young"), "y", path.join(tmp, "old"));
    // mtime and atime three days back, ctime now: still young (Dovecot looks at the ctime).
    fs.writeFileSync(path.join(tmp, "touched"), "z");
    const threeDaysAgo = Date.now() / 1000 - 3 * DAY;
    fs.utimesSync(path.join(tmp, "touched"), threeDaysAgo, threeDaysAgo);
    fs.mkdirSync(path.join(tmp, "subdir"));
    lastScanned(8 * DAY);
    // The clock 36 h after "young" arrived: "old" arrived a second earlier.
    const now = secs(fs.statSync(path.join(tmp, "young")).ctimeMs) + MAILDIR_TMP_DELETE_SECS;
    const r = cleanupMaildirTmp(tmp, { nowSecs: now });
    expect(r).toEqual({ scanned: true, removed: ["old"] });
    expect(fs.readdirSync(tmp).sort()).toEqual(["subdir", "touched", "young"]);
    // The scan marked tmp/ as scanned (atime now): the next look does not scan.
    expect(Math.abs(secs(fs.statSync(tmp).atimeMs) - secs(Date.now()))).toBeLessThanOrEqual(1);
    expect(cleanupMaildirTmp(tmp, { nowSecs: secs(Date.now()) }).scanned).toBe(false);
  });

  it("looks only when the last scan is older than mail_temp_scan_interval (default one week)", () => {
    fs.writeFileSync(path.join(tmp, "f"), "x");
    const later = secs(Date.now()) + 3 * DAY; // the file is stale by then
    lastScanned(6 * DAY);
    expect(cleanupMaildirTmp(tmp, { nowSecs: secs(Date.now()) })).toEqual({ scanned: false, removed: [] });
    expect(cleanupMaildirTmp(tmp, { nowSecs: later, scanIntervalSecs: 10 * DAY })).toEqual({ scanned: false, removed: [] });
    expect(cleanupMaildirTmp(tmp, { nowSecs: later, scanIntervalSecs: 0 })).toEqual({ scanned: false, removed: [] });
    expect(cleanupMaildirTmp(tmp, { nowSecs: later })).toEqual({ scanned: true, removed: ["f"] });
  });

  it("does not scan a tmp/ scanned more than 36 h after its last change (it is empty), nor a missing one", () => {
    fs.writeFileSync(path.join(tmp, "f"), "x");
    // atime past ctime + 36 h, as after a scan long after the last change.
    const t = Date.now() / 1000 + MAILDIR_TMP_DELETE_SECS + 3600;
    fs.utimesSync(tmp, t, Date.now() / 1000);
    expect(cleanupMaildirTmp(tmp, { nowSecs: secs(Date.now()) + 30 * DAY })).toEqual({ scanned: false, removed: [] });
    expect(fs.readdirSync(tmp)).toEqual(["f"]);
    expect(cleanupMaildirTmp(path.join(root, "nope"))).toEqual({ scanned: false, removed: [] });
  });

  it("runs during a mailbox sync: tmp/ unscanned for a week is scanned (and young files kept)", async () => {
    const storage = new MaildirStorageBackend(root, { fsync: false });
    const backend = storage.openMailbox("INBOX");
    const box = Mailbox.open("INBOX", backend, { fsync: "never", createWithUidValidity: await storage.nextUidValidity() });
    try {
      fs.writeFileSync(path.join(tmp, "in-progress"), "x");
      lastScanned(8 * DAY);
      await box.refresh();
      expect(Math.abs(secs(fs.statSync(tmp).atimeMs) - secs(Date.now()))).toBeLessThanOrEqual(1);
      expect(fs.readdirSync(tmp)).toEqual(["in-progress"]);
    } finally {
      await box.close();
    }
  });
});
