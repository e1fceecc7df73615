import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { exportBundle, importBundle, openStorage } from "../../../src/index.js";
import { createNewFile, newFilePermissionsIn, openCreating, writeNewFile } from "../../../src/shared/file-mode.js";
import { makeDirs, makeDirsFor } from "../../../src/shared/make-dirs.js";
import { describeTree, modeBits } from "../../helpers/tree.js";

// Giving a file another group than our own needs root (or membership): CI runs as root, and must run these.
const canChgrp = process.getuid?.() === 0;
const SHARED_GID = 65534;

/** Every entry under `dir` (itself included) as "relative-path mode gid". */
function entries(dir: string): string[] {
  return [...describeTree(dir, (_, st) => `${modeBits(st)} ${st.gid}`)].map(([p, d]) => `${p} ${d}`);
}

describe.runIf(canChgrp || process.env.CI)("new files and directories take their directory's group, as Dovecot's file_create_gid", () => {
  let dir: string;
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sharedDir = (mode: number) => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "gid-"));
    const shared = path.join(dir, "shared");
    fs.mkdirSync(shared);
    fs.chownSync(shared, -1, SHARED_GID);
    fs.chmodSync(shared, mode);
    return shared;
  };

  it("a 0770 directory of another group: files get that group and 0660, subdirectories that group and 0770, whatever the umask", () => {
    const shared = sharedDir(0o770);
    expect(newFilePermissionsIn(shared)).toMatchObject({ mode: 0o660, gid: SHARED_GID, owner: undefined });
    fs.closeSync(createNewFile(path.join(shared, "f")));
    makeDirs(path.join(shared, "a", "b"));
    // Not narrowed by the umask (022 here, as usual), as Dovecot's are not.
    expect(entries(shared).sort()).toEqual([`. 770 ${SHARED_GID}`, `a 770 ${SHARED_GID}`, `a/b 770 ${SHARED_GID}`, `f 660 ${SHARED_GID}`]);
  });

  it("no chgrp where the kernel or nobody needs one: set-group-ID directory, group rights no more than others', our own group", () => {
    expect(newFilePermissionsIn(sharedDir(0o2770)).gid).toBeUndefined(); // the kernel gives the group
    fs.rmSync(dir, { recursive: true });
    expect(newFilePermissionsIn(sharedDir(0o755)).gid).toBeUndefined(); // nothing shared with the group
    fs.rmSync(dir, { recursive: true });
    const own = sharedDir(0o770);
    fs.chownSync(own, -1, process.getegid!());
    expect(newFilePermissionsIn(own).gid).toBeUndefined();
  });

  it("openCreating leaves a file that is there as it is (another writer's group stays)", () => {
    const shared = sharedDir(0o770);
    const file = path.join(shared, "dovecot.mailbox.log");
    fs.writeFileSync(file, "", { mode: 0o640 });
    fs.chownSync(file, -1, 0);
    fs.closeSync(openCreating(file, fs.constants.O_WRONLY | fs.constants.O_APPEND));
    const st = fs.statSync(file);
    expect(st.gid).toBe(0);
  });

  for (const format of ["sdbox", "mdbox", "maildir", "mbox"] as const) {
    it(`${format}: a store inside a 0770 directory of another group has that group on every file and directory, and nothing wider`, async () => {
      const shared = sharedDir(0o770);
      const root = path.join(shared, "mail");
      makeDirs(root);
      const location = format === "mbox" ? `mbox:${root}:INBOX=${root}/inbox` : `${format}:${root}`;
      const storage = openStorage(location);
      await storage.createMailbox("Work");
      for (const name of ["INBOX", "Work"]) {
        const box = await storage.openMailbox(name);
        await box.transaction().append({ body: "Subject: a\r\n\r\nbody\r\n", flags: ["$Label1"] }).commit();
        await box.transaction().flags([{ uid1: 1, uid2: 1 }], "add", ["\\Seen"]).commit();
      }
      await storage.close();
      const bad = entries(root).filter((e) => {
        const [name, mode, gid] = e.split(" ");
        // The UIDVALIDITY marker is empty and 0444, as Dovecot creates it.
        const allowed = /dovecot-uidvalidity\.[0-9a-f]{8}$/.test(name) ? 0o444 : 0o770;
        return Number(gid) !== SHARED_GID || (parseInt(mode, 8) & ~allowed) !== 0;
      });
      expect(bad).toEqual([]);
    });
  }

  for (const format of ["sdbox", "mdbox"] as const) {
    it(`${format}: a missing INDEX= root takes the mail root's mode and group, wherever it is (as Dovecot creates it)`, async () => {
      const shared = sharedDir(0o770);
      const index = path.join(dir, "elsewhere", "index");
      fs.mkdirSync(path.dirname(index), { mode: 0o755 });
      const storage = openStorage(`${format}:${shared}:INDEX=${index}`);
      const box = await storage.openMailbox("INBOX");
      await box.transaction().append({ body: "Subject: a\r\n\r\nbody\r\n" }).commit();
      await storage.close();
      expect(entries(index).filter((e) => !e.endsWith(` 770 ${SHARED_GID}`) && !e.endsWith(` 660 ${SHARED_GID}`))).toEqual([]);
      expect(entries(index).some((e) => e.startsWith("mailboxes/INBOX/dovecot.index.log "))).toBe(true);
    });
  }
});

// Giving a file to another user needs root; CI runs as root, so there it must run (not root elsewhere: skipped).
const isRoot = process.geteuid?.() === 0;
const MAIL_UID = 65534;
const MAIL_GID = 65534;

describe.runIf(isRoot || process.env.CI)("made by root, new files and directories take the owner of their directory (skipped unless root: chown to another user needs it)", () => {
  let dir: string;
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  /** A directory `mode` owned by uid:gid inside a fresh root-owned temp dir. */
  const ownedDir = (mode: number, uid = MAIL_UID, gid = MAIL_GID) => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "owner-"));
    const owned = path.join(dir, "mail");
    fs.mkdirSync(owned);
    fs.chownSync(owned, uid, gid);
    fs.chmodSync(owned, mode);
    return owned;
  };
  /** Every entry under `d` (itself included) as "relative-path mode uid:gid". */
  const owners = (d: string) => [...describeTree(d, (_, st) => `${modeBits(st)} ${st.uid}:${st.gid}`)].map(([p, e]) => `${p} ${e}`).sort();

  it("a 0700 directory of the mail user: files (created, opened creating, written, made by makeDirs) are that user's, modes as before", () => {
    const owned = ownedDir(0o700);
    expect(newFilePermissionsIn(owned)).toMatchObject({ mode: 0o600, gid: undefined, owner: { uid: MAIL_UID, gid: MAIL_GID } });
    fs.closeSync(createNewFile(path.join(owned, "f")));
    fs.closeSync(openCreating(path.join(owned, "g"), fs.constants.O_WRONLY));
    writeNewFile(path.join(owned, "h"), Buffer.from("x"), true);
    makeDirs(path.join(owned, "a", "b"));
    makeDirs(path.join(owned, "root"), { newRoot: true });
    const u = `${MAIL_UID}:${MAIL_GID}`;
    expect(owners(owned)).toEqual([`. 700 ${u}`, `a 700 ${u}`, `a/b 700 ${u}`, `f 600 ${u}`, `g 600 ${u}`, `h 600 ${u}`, `root 700 ${u}`]);
  });

  it("the directory's group goes with its owner (0770 of group root); a set-group-ID directory keeps its bit", () => {
    const owned = ownedDir(0o770, MAIL_UID, 0);
    fs.closeSync(createNewFile(path.join(owned, "f")));
    makeDirs(path.join(owned, "a"));
    fs.chmodSync(path.join(owned, "a"), 0o2770);
    makeDirs(path.join(owned, "a", "b"));
    expect(owners(owned)).toEqual([`. 770 ${MAIL_UID}:0`, `a 2770 ${MAIL_UID}:0`, `a/b 2770 ${MAIL_UID}:0`, `f 660 ${MAIL_UID}:0`]);
  });

  it("a missing store root under the mail user's directory is the user's (as the CLI, switched to that user, makes it)", async () => {
    const home = ownedDir(0o755);
    const storage = openStorage(`sdbox:${path.join(home, "mail", "sdbox")}`);
    await (await storage.openMailbox("INBOX")).transaction().append({ body: "Subject: a\r\n\r\nbody\r\n" }).commit();
    await storage.close();
    expect(owners(home).filter((e) => !e.endsWith(` ${MAIL_UID}:${MAIL_GID}`))).toEqual([]);
    expect(owners(home).some((e) => e.startsWith("mail/sdbox/mailboxes/INBOX/dbox-Mails/u.1 "))).toBe(true);
  });

  it("a missing INDEX= root, wherever it is, takes the mail root's owner with its mode (as its group)", async () => {
    const mail = ownedDir(0o700);
    const index = path.join(dir, "elsewhere", "index");
    fs.mkdirSync(path.dirname(index), { mode: 0o755 });
    const storage = openStorage(`mdbox:${mail}:INDEX=${index}`);
    await (await storage.openMailbox("INBOX")).transaction().append({ body: "Subject: a\r\n\r\nbody\r\n" }).commit();
    await storage.close();
    const index1 = owners(index);
    expect(index1.filter((e) => !e.endsWith(` ${MAIL_UID}:${MAIL_GID}`))).toEqual([]);
    expect(index1.some((e) => e.startsWith("storage/dovecot.map.index.log "))).toBe(true);
    expect(owners(mail).filter((e) => !e.endsWith(` ${MAIL_UID}:${MAIL_GID}`))).toEqual([]);
  });

  it("importBundle writes the imported log as its directory's owner", async () => {
    const mail = ownedDir(0o700);
    const storage = openStorage(`sdbox:${path.join(mail, "a")}`);
    await (await storage.openMailbox("INBOX")).transaction().append({ body: "Subject: a\r\n\r\nbody\r\n" }).commit();
    await storage.close();
    importBundle(exportBundle(path.join(mail, "a", "mailboxes", "INBOX", "dbox-Mails", "dovecot.index")), path.join(mail, "imported"));
    expect(owners(mail).filter((e) => e.startsWith("imported"))).toEqual([`imported.log 600 ${MAIL_UID}:${MAIL_GID}`]);
  });

  it("a root-owned directory leaves new files root's; a file that is there keeps its owner", () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "owner-"));
    expect(newFilePermissionsIn(dir).owner).toBeUndefined();
    fs.closeSync(createNewFile(path.join(dir, "f")));
    makeDirs(path.join(dir, "a"));
    const owned = path.join(dir, "a", "owned");
    fs.writeFileSync(owned, "");
    fs.chownSync(owned, 1, 1);
    fs.chownSync(path.join(dir, "a"), MAIL_UID, MAIL_GID);
    fs.closeSync(openCreating(owned, fs.constants.O_WRONLY | fs.constants.O_APPEND));
    expect(owners(dir)).toEqual([". 700 0:0", "a 700 65534:65534", "a/owned 644 1:1", "f 600 0:0"]);
  });

  it("makeDirsFor: the mbox index directory takes the mailbox file's mode and group, and its directory's owner", () => {
    const owned = ownedDir(0o700);
    const inbox = path.join(owned, "inbox");
    fs.writeFileSync(inbox, "", { mode: 0o600 });
    makeDirsFor(path.join(owned, ".imap", "INBOX"), inbox);
    expect(owners(owned).filter((e) => e.startsWith(".imap"))).toEqual([`.imap 700 ${MAIL_UID}:${MAIL_GID}`, `.imap/INBOX 700 ${MAIL_UID}:${MAIL_GID}`]);
  });
});
