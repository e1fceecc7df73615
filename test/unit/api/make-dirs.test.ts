import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect, it } from "vitest";
import { makeDirs } from "../../../src/shared/make-dirs.js";
import { openStorage } from "../../../src/index.js";

it("makeDirs creates missing levels, accepts existing ones, and fails once where mkdir fails", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-mkdirs-"));
  try {
    makeDirs(path.join(dir, "a/b/c"));
    makeDirs(path.join(dir, "a/b/c"));
    expect(fs.statSync(path.join(dir, "a/b/c")).isDirectory()).toBe(true);
    fs.writeFileSync(path.join(dir, "file"), "");
    expect(() => makeDirs(path.join(dir, "file/x"))).toThrow(/ENOTDIR/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// Node 20's mkdirSync(…, { recursive: true }) spins forever on /proc paths.
it.runIf(fs.existsSync("/proc/self"))("a mail location under /proc gives an error, not a hang", async () => {
  expect(() => makeDirs("/proc/nonexistent/mail")).toThrow(/ENOENT/);
  for (const format of ["mdbox", "sdbox", "maildir", "mbox"]) {
    let error: unknown;
    try {
      const storage = openStorage(`${format}:/proc/nonexistent/mail`);
      await storage.openMailbox("INBOX").finally(() => storage.close());
    } catch (err) {
      error = err;
    }
    expect(error, format).toBeInstanceOf(Error);
  }
}, 10_000);

const modeOf = (p: string) => fs.statSync(p).mode & 0o7777;

it("makeDirs follows Dovecot's modes: a new root is 0700, a directory inside takes its parent's bits, nothing under a sticky /tmp-like parent is wider than 0700", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-mkdirs-"));
  const umask = process.umask(0o022);
  try {
    fs.chmodSync(dir, 0o755);
    makeDirs(path.join(dir, "root/a"), { newRoot: true });
    expect([modeOf(path.join(dir, "root")), modeOf(path.join(dir, "root/a"))]).toEqual([0o700, 0o700]);
    fs.mkdirSync(path.join(dir, "shared"), 0o750);
    fs.chmodSync(path.join(dir, "shared"), 0o750);
    makeDirs(path.join(dir, "shared/x/y"));
    expect([modeOf(path.join(dir, "shared/x")), modeOf(path.join(dir, "shared/x/y"))]).toEqual([0o750, 0o750]);
    fs.mkdirSync(path.join(dir, "sticky"));
    fs.chmodSync(path.join(dir, "sticky"), 0o1777);
    makeDirs(path.join(dir, "sticky/z"));
    expect(modeOf(path.join(dir, "sticky/z"))).toBe(0o700);
  } finally {
    process.umask(umask);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it("a store the engine creates is 0700/0600 in every format (the uidvalidity markers 0444, as Dovecot's), and one inside a 0770 tree stays group-shared, never wider", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-modes-"));
  // Group write survives a 002 umask (a shared setup's); 0700/0600 stay so under any.
  const umask = process.umask(0o002);
  try {
    fs.chmodSync(dir, 0o755);
    for (const [format, parentMode, dirMode, fileMode] of [
      ["sdbox", 0o755, 0o700, 0o600],
      ["mdbox", 0o755, 0o700, 0o600],
      ["maildir", 0o755, 0o700, 0o600],
      ["mbox", 0o755, 0o700, 0o600],
      ["sdbox", 0o770, 0o770, 0o660],
      ["maildir", 0o770, 0o770, 0o660],
    ] as const) {
      const parent = path.join(dir, `${format}-${parentMode.toString(8)}`);
      fs.mkdirSync(parent);
      fs.chmodSync(parent, parentMode);
      // Inside a 0770 tree the root exists already (the admin made it shared); a new root is the engine's to make.
      const root = parentMode === 0o770 ? parent : path.join(parent, "mail");
      const location = format === "mbox" ? `mbox:${root}:INBOX=${root}/inbox` : `${format}:${root}`;
      const storage = openStorage(location, { fsync: "never" });
      const box = await storage.openMailbox("INBOX");
      await box.transaction().append({ body: "Subject: m\n\nbody\n", flags: ["\\Seen", "kw"] }).commit();
      await box.transaction().flags([{ uid1: 1, uid2: 1 }], "add", ["\\Flagged"]).commit();
      await storage.close();
      const walk = (p: string): void => {
        for (const e of fs.readdirSync(p, { withFileTypes: true })) {
          const full = path.join(p, e.name);
          const where = `${format} ${path.relative(dir, full)}`;
          if (e.isDirectory()) {
            expect(modeOf(full), where).toBe(dirMode);
            walk(full);
          } else if (e.name.startsWith("dovecot-uidvalidity.")) {
            expect(modeOf(full), where).toBe(0o444);
          } else {
            expect(modeOf(full), where).toBe(fileMode);
          }
        }
      };
      walk(root);
      if (root !== parent) expect(modeOf(root), format).toBe(0o700);
    }
  } finally {
    process.umask(umask);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
