import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterEach, expect, it } from "vitest";
import { createOracle, describeInterop, MAIL_FORMATS, ORACLE_GID, ORACLE_UID, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";
import { describeTree } from "../helpers/tree.js";

const exec = promisify(execFile);
const bin = path.resolve(__dirname, "../../bin/mailstore.js");

/** Every entry under `dir`: type, mode, owner, size, mtime (ns) and, for files, a hash of the bytes. */
function snapshot(dir: string): Map<string, string> {
  return describeTree(dir, (p, st) => {
    const bytes = st.isFile() ? createHash("sha1").update(fs.readFileSync(p)).digest("hex") : "";
    return `${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeNs} ${bytes}`;
  });
}

/** What differs between two snapshots, one line per path. */
function changes(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [p, v] of before) if (after.get(p) !== v) out.push(`${p}: ${v} -> ${after.get(p) ?? "(gone)"}`);
  for (const [p, v] of after) if (!before.has(p)) out.push(`${p}: (new) ${v}`);
  return out;
}

describeInterop("read-only verbs write nothing", () => {
  let o: DovecotOracle;
  let outDir: string;
  afterEach(async () => {
    await o?.cleanup();
    if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
  });

  const run = async (...args: string[]) => {
    const r = await exec(process.execPath, [bin, ...args], { env: { ...process.env, MAIL: "" }, encoding: "buffer", maxBuffer: 64 << 20 });
    return { out: r.stdout.toString("latin1"), err: r.stderr.toString("utf8") };
  };
  const cli = async (...args: string[]) => (await run(...args)).out;
  const saveStdin = (body: string) => new Promise<void>((resolve, reject) => {
    const child = execFile(process.execPath, [bin, "-l", o.location, "save", "-m", "INBOX"], (err) => (err ? reject(err) : resolve()));
    child.stdin!.end(body);
  });
  /** `mailstore watch` until it says it is watching, then SIGTERM. */
  const watchUntilReady = () => new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, "-l", o.location, "watch", "--json", "-m", "INBOX"], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
      if (err.includes("watching INBOX from ")) child.kill("SIGTERM");
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => (signal === "SIGTERM" || code === 0 ? resolve() : reject(new Error(`watch exited ${code}: ${err}`))));
  });

  for (const format of ["maildir", "mbox"] as const) {
    it(`${format}: after a delivery no index has seen (a file in new/, a message appended to the mbox), read-only verbs still write nothing, show the index's messages and say that the files changed; a writing verb then indexes it`, async () => {
      o = createOracle(format);
      for (let i = 1; i <= 2; i++) await o.save("INBOX", sampleMessage(i));
      const delivered = sampleMessage(3);
      if (format === "maildir") {
        const file = path.join(o.root, "new", `1800000000.M1P1.mda`);
        fs.writeFileSync(file, delivered, { mode: 0o600 });
        fs.chownSync(file, ORACLE_UID, ORACLE_GID);
      } else {
        fs.appendFileSync(path.join(o.root, "inbox"), `From mda@example.org Thu Jan  1 00:00:00 2026\n${delivered.replace(/\r\n/g, "\n")}\n`);
      }
      const before = snapshot(o.dir);
      const fetched = await run("-l", o.location, "fetch", "uid", "mailbox", "INBOX", "all");
      const status = await run("-l", o.location, "mailbox", "status", "messages", "INBOX");
      expect(changes(before, snapshot(o.dir))).toEqual([]);
      expect(fetched.out.match(/^uid: \d+$/gm)).toEqual(["uid: 1", "uid: 2"]);
      expect(status.out).toBe("INBOX messages=2\n");
      for (const r of [fetched, status]) expect(r.err).toMatch(/INBOX: the mail files changed since an index last synced them; not shown/);
      // A writing verb syncs: the delivery is a message now, for the engine and for Dovecot.
      await cli("-l", o.location, "flags", "add", "\\Seen", "mailbox", "INBOX", "uid", "1");
      const after = await run("-l", o.location, "mailbox", "status", "messages", "INBOX");
      expect(after).toEqual({ out: "INBOX messages=3\n", err: "" });
      expect((await o.mailboxStatus("messages", "INBOX")).messages).toBe("3");
    });
  }

  for (const format of MAIL_FORMATS) {
    it(`${format}: fetch, mailbox list/status, dump, log, replay, diff, export, deleted and watch leave every file's bytes, mode and mtime as they were, after a Dovecot write the engine has not seen`, async () => {
      o = createOracle(format);
      outDir = fs.mkdtempSync(path.join(os.tmpdir(), "ro-out-"));
      await o.mailboxCreate("Work");
      for (let i = 1; i <= 3; i++) await o.save("INBOX", sampleMessage(i));
      await o.flags("add", "\\Seen", "mailbox INBOX uid 1");
      // The engine writes, then Dovecot writes after it: the engine's next open has Dovecot's records to catch up with.
      await saveStdin(sampleMessage(4));
      await cli("-l", o.location, "flags", "add", "$Label1", "mailbox", "INBOX", "uid", "2");
      await o.save("INBOX", sampleMessage(5));
      await o.flags("add", "\\Flagged", "mailbox INBOX uid 3");
      await o.expunge("mailbox INBOX uid 1");
      const indexDir = o.mailboxIndexDir("INBOX");
      const before = snapshot(o.dir);

      const { out: fetched, err: fetchErr } = await run("-l", o.location, "fetch", "--json", "uid flags guid text", "mailbox", "INBOX", "all");
      expect(fetchErr).toBe(""); // the files are as Dovecot's index has them: no notice
      await cli("-l", o.location, "fetch", "text", "mailbox", "*", "all");
      await cli("-l", o.location, "mailbox", "list");
      const status = await cli("-l", o.location, "mailbox", "status", "--json", "all", "*");
      await cli("-l", o.location, "deleted", "list");
      await cli("dump", path.join(indexDir, "dovecot.index.log"));
      if (fs.existsSync(path.join(indexDir, "dovecot.index"))) await cli("dump", path.join(indexDir, "dovecot.index"));
      await cli("log", indexDir);
      await cli("replay", indexDir);
      await cli("diff", indexDir, "1:0");
      await cli("export", indexDir, "-o", path.join(outDir, "bundle"));
      await watchUntilReady();

      expect(changes(before, snapshot(o.dir))).toEqual([]);
      // What they read is what Dovecot sees (doveadm writes: it runs last).
      const ours = (JSON.parse(fetched) as Array<{ uid: string; flags: string[]; guid: string }>).map((m) => ({ uid: m.uid, guid: m.guid, flags: [...m.flags].sort() }));
      const theirs = (await o.fetch("uid guid flags", ["mailbox", "INBOX", "all"])).map((m) => ({
        uid: m.uid, guid: m.guid, flags: m.flags.split(" ").filter((f) => f && f !== "\\Recent").sort(),
      }));
      expect(ours).toEqual(theirs);
      const inbox = (JSON.parse(status) as Array<Record<string, string>>).find((s) => s.mailbox === "INBOX")!;
      expect(inbox.messages).toBe("4");
      expect(inbox.uidnext).toBe((await o.mailboxStatus("uidnext", "INBOX")).uidnext);
    });
  }
});
