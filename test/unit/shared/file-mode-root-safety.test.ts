/**
 * Embedded as root in a store the mail user owns, that user controls every
 * name in it: a symlink planted where the library writes a temp file must
 * not have root write or chown what it points to. Also: an mbox INBOX in a
 * root-owned spool is the mail user's; altmove's copy keeps its mode and
 * leaves no partial file; the euid is not cached.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import fsDefault from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openStorage } from "../../../src/index.js";
import { createNewFile, finishNewDir, newFilePermissionsIn, openCreating } from "../../../src/shared/file-mode.js";
import { describeTree, modeBits } from "../../helpers/tree.js";
import { makeDirs } from "../../../src/shared/make-dirs.js";
import { TransactionLog } from "../../../src/log/log.js";
import { LockTimeoutError } from "../../../src/shared/errors.js";

// chown to another user and seteuid need root; CI runs as root, so there it must run (elsewhere: skipped).
const isRoot = process.geteuid?.() === 0;
const MAIL_UID = 65534;
const MAIL_GID = 65534;
const SECRET = "root:secret:0:0\n";
const body = "Subject: a\r\n\r\nbody\r\n";

describe.runIf(isRoot || process.env.CI)("as root in a store the mail user owns (skipped unless root)", () => {
  let dir: string;
  let secret: string;
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  /** A 0755 root temp dir holding a root-owned 0600 `secret` and `mail`, `mode`, the mail user's. */
  const setup = (mode = 0o700) => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "root-safety-"));
    fs.chmodSync(dir, 0o755);
    secret = path.join(dir, "secret");
    fs.writeFileSync(secret, SECRET, { mode: 0o600 });
    const mail = path.join(dir, "mail");
    fs.mkdirSync(mail, mode);
    fs.chownSync(mail, MAIL_UID, MAIL_GID);
    return mail;
  };
  /** An sdbox store in the mail user's `mail` with an ALT directory of `mode`, also the mail user's. */
  const openSdboxWithAlt = (mode: number) => {
    const mail = setup();
    const alt = path.join(dir, "alt");
    fs.mkdirSync(alt, mode);
    fs.chownSync(alt, MAIL_UID, MAIL_GID);
    return { mail, alt, storage: openStorage(`sdbox:${path.join(mail, "sdbox")}:ALT=${alt}`) };
  };
  /** A root-owned spool, root:mail (8) 2775 as Debian's /var/mail. */
  const makeSpool = () => {
    const spool = path.join(dir, "spool");
    fs.mkdirSync(spool);
    fs.chownSync(spool, 0, 8);
    fs.chmodSync(spool, 0o2775);
    return spool;
  };
  const expectSecretUntouched = () => {
    const st = fs.lstatSync(secret);
    expect(`${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)} ${fs.readFileSync(secret, "utf8")}`).toBe(`0:0 600 ${SECRET}`);
  };

  it("maildir: a symlink at dovecot-uidlist.new.<pid> (first append) or .tmp (append after a torn line) is not written through nor chowned", async () => {
    const mail = setup();
    for (const name of [`dovecot-uidlist.new.${process.pid}`, "dovecot-uidlist.tmp"]) fs.symlinkSync(secret, path.join(mail, name));
    const storage = openStorage(`maildir:${mail}`);
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body }).commit();
    // A torn last line (a killed writer's): the next append recreates the file via dovecot-uidlist.tmp.
    fs.appendFileSync(path.join(mail, "dovecot-uidlist"), "2 :torn");
    await box.transaction().append({ body }).commit();
    await storage.close();
    expectSecretUntouched();
    expect(fs.readFileSync(path.join(mail, "dovecot-uidlist"), "utf8")).toMatch(/^3 V\d+ N\d+ .*\n1 :.*\n2 :.*\n$/);
    expect(fs.statSync(path.join(mail, "dovecot-uidlist")).uid).toBe(MAIL_UID);
  });

  it("sdbox: a symlink at dovecot.index.log.rebuild.<pid> is not written through nor chowned by force-resync", async () => {
    const mail = setup();
    const storage = openStorage(`sdbox:${mail}`);
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body }).commit();
    await box.close();
    const boxDir = path.join(mail, "mailboxes", "INBOX", "dbox-Mails");
    fs.symlinkSync(secret, path.join(boxDir, `dovecot.index.log.rebuild.${process.pid}`));
    await storage.forceResync("INBOX");
    await storage.close();
    expectSecretUntouched();
    expect(fs.statSync(path.join(boxDir, "dovecot.index.log")).uid).toBe(MAIL_UID);
  });

  it("openCreating does not open a user's symlink as root: a typed error naming the file", () => {
    const mail = setup();
    const file = path.join(mail, "dovecot.mailbox.log");
    fs.symlinkSync(secret, file);
    expect(() => openCreating(file, fs.constants.O_WRONLY | fs.constants.O_APPEND)).toThrow(expect.objectContaining({ code: "UNSUPPORTED", path: file }));
    expectSecretUntouched();
  });

  it("finishNewDir changes the directory it made, never one a symlink swapped in after the mkdir points to", () => {
    const mail = setup();
    const target = path.join(dir, "rootdir");
    fs.mkdirSync(target, 0o700);
    const made = path.join(mail, "made");
    fs.symlinkSync(target, made);
    expect(() => finishNewDir(made, 0o770, undefined, { owner: { uid: MAIL_UID, gid: MAIL_GID }, parent: newFilePermissionsIn(mail).parent })).toThrow(/ELOOP|ENOTDIR/);
    const st = fs.statSync(target, { bigint: true });
    expect(`${st.uid}:${st.gid} ${modeBits(st)}`).toBe("0:0 700");
  });

  it("a directory above a new entry swapped for a symlink to a root-only directory: neither the new file nor the new directory is given to the user", () => {
    const mail = setup();
    const rootDir = path.join(dir, "rootdir");
    fs.mkdirSync(rootDir, 0o700);
    // What makeDirs / createNewFile decided from the user's directory, before the user swapped `sub` for a symlink.
    const perm = newFilePermissionsIn(mail);
    expect(perm.owner).toEqual({ uid: MAIL_UID, gid: MAIL_GID });
    fs.symlinkSync(rootDir, path.join(mail, "sub"));
    const newDir = path.join(mail, "sub", "made");
    fs.mkdirSync(newDir, 0o700);
    expect(() => finishNewDir(newDir, 0o700, undefined, { owner: perm.owner!, parent: perm.parent })).toThrow(expect.objectContaining({ code: "UNSUPPORTED", path: newDir }));
    expect(fs.readdirSync(rootDir)).toEqual([]);
    const newFile = path.join(mail, "sub", "file");
    expect(() => createNewFile(newFile, fs.constants.O_WRONLY, perm)).toThrow(expect.objectContaining({ code: "UNSUPPORTED", path: newFile }));
    // Made (O_EXCL, ours, empty) and left as made: root's.
    const st = fs.statSync(path.join(rootDir, "file"));
    expect(`${fs.readdirSync(rootDir)} ${st.uid}:${st.gid} ${st.size}`).toBe("file 0:0 0");
    const rootSt = fs.statSync(rootDir);
    expect(`${rootSt.uid}:${rootSt.gid} ${(rootSt.mode & 0o7777).toString(8)}`).toBe("0:0 700");
  });

  it("makeDirs: a level that turns out to exist (EEXIST) as a symlink the user put there: the next level is not given to the user", () => {
    const mail = setup();
    const rootDir = path.join(dir, "rootdir");
    fs.mkdirSync(rootDir, 0o700);
    const level = path.join(mail, "a");
    // The user wins the race: a symlink to a root-only directory appears at `a` just before our mkdir.
    const mkdirSync = fsDefault.mkdirSync;
    fsDefault.mkdirSync = ((p: fs.PathLike, ...rest: unknown[]) => {
      if (p === level) fs.symlinkSync(rootDir, level);
      return (mkdirSync as (...a: unknown[]) => unknown)(p, ...rest);
    }) as typeof fs.mkdirSync;
    syncBuiltinESMExports();
    try {
      expect(() => makeDirs(path.join(level, "b"))).toThrow(expect.objectContaining({ code: "UNSUPPORTED", path: path.join(level, "b") }));
    } finally {
      fsDefault.mkdirSync = mkdirSync;
      syncBuiltinESMExports();
    }
    // Made as root, refused, removed: nothing of the user's in root's directory.
    expect(fs.readdirSync(rootDir)).toEqual([]);
  });

  it("a store reached through a symlink of root's still gives new entries to the user (the real parent is the user's)", () => {
    const mail = setup();
    const link = path.join(dir, "link");
    fs.symlinkSync(mail, link);
    const file = path.join(link, "f");
    fs.closeSync(createNewFile(file));
    makeDirs(path.join(link, "d", "e"));
    for (const p of ["f", "d", "d/e"]) expect(fs.statSync(path.join(mail, p)).uid).toBe(MAIL_UID);
  });

  it("sdbox altmove: a message file the user swapped for a symlink to a root-only file, or a hard link to one, is not copied into a file the user owns", async () => {
    const { mail, alt, storage } = openSdboxWithAlt(0o700);
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body }).append({ body }).commit();
    const mails = path.join(mail, "sdbox", "mailboxes", "INBOX", "dbox-Mails");
    const u1 = path.join(mails, "u.1");
    fs.rmSync(u1);
    fs.symlinkSync(secret, u1);
    await expect(storage.altMove("INBOX", [1])).rejects.toThrow(expect.objectContaining({ code: "UNSUPPORTED", path: u1 }));
    const u2 = path.join(mails, "u.2");
    fs.rmSync(u2);
    // Same filesystem (the temp dir): what a user could link to root's file.
    fs.linkSync(secret, u2);
    await expect(storage.altMove("INBOX", [2])).rejects.toThrow(expect.objectContaining({ code: "UNSUPPORTED", path: u2 }));
    await storage.close();
    expectSecretUntouched();
    expect(fs.lstatSync(u1).isSymbolicLink()).toBe(true);
    expect(fs.statSync(u2).nlink).toBe(2);
    expect(fs.readdirSync(alt, { recursive: true }).filter((p) => String(p).includes("u."))).toEqual([]);
  });

  it("mbox: an INBOX created in a root-owned spool (root:mail 2775) is the mail root's owner's, and that user can append to it", async () => {
    const mail = setup();
    const spool = makeSpool();
    const inbox = path.join(spool, "user");
    const storage = openStorage(`mbox:${mail}:INBOX=${inbox}`);
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body }).commit();
    await storage.close();
    const st = fs.statSync(inbox);
    // The spool's group (set-group-ID: the kernel's) and its mode rule stay.
    expect(`${st.uid}:${st.gid} ${(st.mode & 0o777).toString(8)}`).toBe(`${MAIL_UID}:8 664`);
    execFileSync("setpriv", [`--reuid=${MAIL_UID}`, `--regid=${MAIL_GID}`, "--clear-groups", "sh", "-c", 'printf "\\n" >> "$1"', "sh", inbox]);
    expect(fs.statSync(inbox).size).toBe(st.size + 1);
  });

  it("sdbox altmove: 0700 primary, 0755 ALT: the moved u.1 stays 0600, the mail user's", async () => {
    const { alt, storage } = openSdboxWithAlt(0o755);
    await (await storage.openMailbox("INBOX")).transaction().append({ body }).commit();
    await storage.altMove("INBOX", [1]);
    await storage.close();
    const moved = [...describeTree(alt, (_, st) => `${modeBits(st)} ${st.uid}:${st.gid}`)].filter(([p]) => p.endsWith("u.1"));
    expect(moved).toEqual([["mailboxes/INBOX/dbox-Mails/u.1", `600 ${MAIL_UID}:${MAIL_GID}`]]);
  });

  it("openCreating whose group change fails leaves the shared file in place (a peer may already have it open and written to it)", () => {
    const mail = setup();
    // 0770, group mail (8): the group rule gives 8, which uid 65534 (egid 0, no groups) cannot give.
    fs.chownSync(mail, MAIL_UID, 8);
    fs.chmodSync(mail, 0o770);
    const file = path.join(mail, "dovecot.mailbox.log");
    process.seteuid!(MAIL_UID);
    try {
      expect(() => openCreating(file, fs.constants.O_WRONLY | fs.constants.O_APPEND)).toThrow(expect.objectContaining({ code: "EPERM" }));
    } finally {
      process.seteuid!(0);
    }
    expect(fs.existsSync(file)).toBe(true);
  });

  it("the euid is read each time: after seteuid() to the mail user, no chown is attempted", () => {
    const mail = setup(0o755);
    expect(newFilePermissionsIn(mail).owner).toEqual({ uid: MAIL_UID, gid: MAIL_GID });
    process.seteuid!(MAIL_UID);
    try {
      expect(newFilePermissionsIn(mail).owner).toBeUndefined();
    } finally {
      process.seteuid!(0);
    }
    expect(newFilePermissionsIn(mail).owner).toEqual({ uid: MAIL_UID, gid: MAIL_GID });
  });

  it("mbox: INBOX=<root's symlink to the spool>/user (RHEL's /var/mail -> spool/mail) is created and given to the mail user", async () => {
    const mail = setup();
    const spool = makeSpool();
    const varMail = path.join(dir, "varmail");
    fs.symlinkSync(spool, varMail);
    const inbox = path.join(varMail, "user");
    const storage = openStorage(`mbox:${mail}:INBOX=${inbox}`);
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body }).commit();
    await storage.close();
    const st = fs.statSync(path.join(spool, "user"));
    expect(`${st.uid}:${st.gid} ${(st.mode & 0o777).toString(8)}`).toBe(`${MAIL_UID}:8 664`);
  });

  it("sdbox: INDEX=<root's symlink to a root-owned directory>/user: the index tree is made and given to the mail user", async () => {
    const mail = setup();
    const realIndex = path.join(dir, "srv-index");
    fs.mkdirSync(realIndex, 0o755);
    const varIndex = path.join(dir, "var-index");
    fs.symlinkSync(realIndex, varIndex);
    const storage = openStorage(`sdbox:${path.join(mail, "sdbox")}:INDEX=${path.join(varIndex, "user")}`);
    await (await storage.openMailbox("INBOX")).transaction().append({ body }).commit();
    await storage.close();
    const owners = new Set([...describeTree(path.join(realIndex, "user"), (_, st) => `${st.uid}`)].map(([, o]) => o));
    expect([...owners]).toEqual([`${MAIL_UID}`]);
  });

  it("maildir: a store whose real path is not UTF-8 (reached through a symlink of root's) is created and given to the mail user", async () => {
    setup();
    const raw = Buffer.concat([Buffer.from(`${dir}/m`), Buffer.from([0xff, 0xfe])]);
    fs.mkdirSync(raw, 0o700);
    fs.chownSync(raw, MAIL_UID, MAIL_GID);
    const link = path.join(dir, "link");
    fs.symlinkSync(raw, link);
    const storage = openStorage(`maildir:${link}`);
    await (await storage.openMailbox("INBOX")).transaction().append({ body }).commit();
    await storage.close();
    for (const p of ["cur", "new", "tmp", "dovecot-uidlist"]) expect(`${p} ${fs.statSync(path.join(link, p)).uid}`).toBe(`${p} ${MAIL_UID}`);
  });

  it("a file whose group change fails (EPERM) is removed: no half-made mbox mailbox, a second createMailbox works", async () => {
    const mail = setup();
    const storage = openStorage(`mbox:${mail}`);
    await storage.openMailbox("INBOX");
    // 0770, group mail (8): the group rule gives 8, which uid 65534 (egid 0, no groups) cannot give.
    fs.chownSync(mail, MAIL_UID, 8);
    fs.chmodSync(mail, 0o770);
    process.seteuid!(MAIL_UID);
    try {
      await expect(storage.createMailbox("box")).rejects.toThrow(expect.objectContaining({ code: "EPERM" }));
    } finally {
      process.seteuid!(0);
    }
    expect(fs.existsSync(path.join(mail, "box"))).toBe(false);
    await storage.createMailbox("box");
    await storage.close();
    expect(fs.statSync(path.join(mail, "box")).uid).toBe(MAIL_UID);
  });

  it("sdbox altmove: a root-owned u.N (an older root run's) and a group member's, one link each, are moved with the rest of the batch and given to the owner; a hard link to root's file refuses the batch before anything moves", async () => {
    const { mail, alt, storage } = openSdboxWithAlt(0o700);
    const box = await storage.openMailbox("INBOX");
    await box.transaction().append({ body }).append({ body }).append({ body }).commit();
    const mails = path.join(mail, "sdbox", "mailboxes", "INBOX", "dbox-Mails");
    fs.chownSync(path.join(mails, "u.1"), 0, 0);
    fs.chownSync(path.join(mails, "u.2"), 1234, MAIL_GID);
    const u3 = path.join(mails, "u.3");
    fs.rmSync(u3);
    fs.linkSync(secret, u3);
    await expect(storage.altMove("INBOX", [1, 2, 3])).rejects.toThrow(expect.objectContaining({ code: "UNSUPPORTED", path: u3 }));
    expect(fs.readdirSync(mails).filter((n) => n.startsWith("u.")).sort()).toEqual(["u.1", "u.2", "u.3"]);
    await storage.altMove("INBOX", [1, 2]);
    await storage.close();
    const altMails = path.join(alt, "mailboxes", "INBOX", "dbox-Mails");
    for (const n of ["u.1", "u.2"]) {
      const st = fs.statSync(path.join(altMails, n));
      expect(`${n} ${st.uid}:${st.gid} ${fs.readFileSync(path.join(altMails, n), "utf8").includes("body")}`).toBe(`${n} ${MAIL_UID}:${MAIL_GID} true`);
      expect(fs.existsSync(path.join(mails, n))).toBe(false);
    }
    expectSecretUntouched();
  });
});

describe("sdbox altmove: a copy that fails", () => {
  let dir: string;
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("a directory at u.N: refused, naming it, before any temp file is made", async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "altmove-fail-"));
    const storage = openStorage(`sdbox:${path.join(dir, "sdbox")}:ALT=${path.join(dir, "alt")}`);
    await (await storage.openMailbox("INBOX")).transaction().append({ body }).commit();
    const from = path.join(dir, "sdbox", "mailboxes", "INBOX", "dbox-Mails", "u.2");
    fs.mkdirSync(from);
    const to = path.join(dir, "alt", "mailboxes", "INBOX", "dbox-Mails", "u.2");
    await expect(storage.altMove("INBOX", [2])).rejects.toThrow(expect.objectContaining({ code: "UNSUPPORTED", path: from }));
    await storage.close();
    expect(fs.readdirSync(path.dirname(to)).filter((n) => n.includes("altmove"))).toEqual([]);
  });
});

describe("openCreating on a dangling symlink (any user)", () => {
  let dir: string;
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("a typed error naming the file, not an endless EEXIST/ENOENT loop", () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "open-creating-"));
    const file = path.join(dir, "dovecot.mailbox.log");
    fs.symlinkSync(path.join(dir, "missing"), file);
    // The old loop never returns: after 1000 opens of the file, fail instead of hanging the worker.
    const openSync = fsDefault.openSync;
    let opens = 0;
    fsDefault.openSync = ((p: fs.PathLike, ...rest: unknown[]) => {
      if (p === file && ++opens > 1000) throw new Error(`openSync(${file}) called ${opens} times: openCreating loops`);
      return (openSync as (...a: unknown[]) => number)(p, ...rest);
    }) as typeof fs.openSync;
    syncBuiltinESMExports();
    try {
      expect(() => openCreating(file, fs.constants.O_WRONLY | fs.constants.O_APPEND)).toThrow(expect.objectContaining({ code: "UNSUPPORTED", path: file }));
    } finally {
      fsDefault.openSync = openSync;
      syncBuiltinESMExports();
    }
    expect(fs.existsSync(path.join(dir, "missing"))).toBe(false);
  });
});

describe("any user", () => {
  let dir: string;
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("a stale dovecot.index.log.newlock (a rotation killed before its rename) does not block rotate()", async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "newlock-"));
    const prefix = path.join(dir, "dovecot.index");
    const log = TransactionLog.open(prefix, { create: {}, fsync: "never" });
    fs.writeFileSync(`${prefix}.log.newlock`, "stale");
    await expect(log.rotate()).resolves.toMatchObject({ fileSeq: 2 });
    await log.close();
    expect(fs.existsSync(`${prefix}.log.newlock`)).toBe(false);
  });

  it("sdbox altmove by a non-root process follows a symlinked u.N (it reads only what it may)", async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "altmove-link-"));
    const storage = openStorage(`sdbox:${path.join(dir, "sdbox")}:ALT=${path.join(dir, "alt")}`);
    await (await storage.openMailbox("INBOX")).transaction().append({ body }).commit();
    const u1 = path.join(dir, "sdbox", "mailboxes", "INBOX", "dbox-Mails", "u.1");
    const elsewhere = path.join(dir, "elsewhere");
    fs.renameSync(u1, elsewhere);
    fs.symlinkSync(elsewhere, u1);
    await storage.altMove("INBOX", [1]);
    await storage.close();
    const moved = path.join(dir, "alt", "mailboxes", "INBOX", "dbox-Mails", "u.1");
    expect(fs.readFileSync(moved)).toEqual(fs.readFileSync(elsewhere));
    expect(fs.existsSync(u1)).toBe(false);
  });

  it("openCreating whose file keeps being created and removed by others throws a LockTimeoutError naming it (retried as contention)", () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "open-creating-"));
    const file = path.join(dir, "dovecot.mailbox.log");
    // Every O_EXCL create finds it there, every plain open finds it gone.
    const openSync = fsDefault.openSync;
    fsDefault.openSync = ((p: fs.PathLike, flags: number, ...rest: unknown[]) => {
      if (p !== file) return (openSync as (...a: unknown[]) => number)(p, flags, ...rest);
      throw Object.assign(new Error(`fake ${p}`), { code: (flags & fs.constants.O_EXCL) !== 0 ? "EEXIST" : "ENOENT" });
    }) as typeof fs.openSync;
    syncBuiltinESMExports();
    let thrown: unknown;
    try {
      openCreating(file, fs.constants.O_WRONLY | fs.constants.O_APPEND);
    } catch (err) {
      thrown = err;
    } finally {
      fsDefault.openSync = openSync;
      syncBuiltinESMExports();
    }
    expect(thrown).toBeInstanceOf(LockTimeoutError);
    expect(thrown).toMatchObject({ code: "LOCK_TIMEOUT", path: file });
  });
});
