import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterEach, expect, it } from "vitest";
import { createOracle, describeInterop, ORACLE_UID, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";

const exec = promisify(execFile);
const bin = path.resolve(__dirname, "../../bin/mailstore.js");

describeInterop("mailstore's doveadm-like verbs against doveadm", () => {
  let o: DovecotOracle;
  const cli = async (...args: string[]) => (await exec(process.execPath, [bin, "-l", o.location, ...args], { env: { ...process.env, MAIL: "" } })).stdout;
  const saveStdin = (mailbox: string, body: string) => new Promise<void>((resolve, reject) => {
    const child = execFile(process.execPath, [bin, "-l", o.location, "save", "-m", mailbox], (err) => (err ? reject(err) : resolve()));
    child.stdin!.end(body);
  });
  /** doveadm's JSON fetch with flags as an array without \Recent, as `mailstore fetch --json` prints it. */
  const doveadmJson = async (fields: string, query: string[]): Promise<Array<Record<string, string | string[]>>> => (await o.fetch(fields, query)).map((r) => ({
    ...r, ...(r.flags !== undefined ? { flags: r.flags.split(" ").filter((f) => f && f !== "\\Recent") } : {}),
  }));

  afterEach(async () => o?.cleanup());
  for (const format of ["mdbox", "sdbox"] as const) {
    it(`${format}: fetch --json equals doveadm -f json fetch on Dovecot's mailbox; engine's flags/copy/move/expunge/purge are what doveadm then sees`, async () => {
      o = createOracle(format);
      await o.mailboxCreate("Work");
      for (let i = 1; i <= 4; i++) await o.save("INBOX", sampleMessage(i));
      await o.flags("add", "\\Seen $Label1", "mailbox INBOX uid 1:2");
      await o.run(["fetch", "modseq", "mailbox", "INBOX", "all"]); // enable modseqs on Dovecot's side
      const fields = "uid flags guid size.physical modseq text";
      expect(JSON.parse(await cli("fetch", "--json", fields, "mailbox", "INBOX", "all"))).toEqual(await doveadmJson(fields, ["mailbox", "INBOX", "all"]));

      await saveStdin("INBOX", sampleMessage(5));
      await cli("flags", "replace", "\\Flagged todo", "mailbox", "INBOX", "unseen");
      await cli("copy", "Work", "mailbox", "INBOX", "uid", "1");
      await cli("move", "Work", "mailbox", "INBOX", "keyword", "todo", "uid", "3");
      await cli("expunge", "mailbox", "INBOX", "uid", "2");
      await cli("purge");
      await o.chownRoot();
      for (const mailbox of ["INBOX", "Work"]) {
        const ours = JSON.parse(await cli("fetch", "--json", "mailbox uid flags guid text", "mailbox", mailbox, "all"));
        expect(ours).toEqual(await doveadmJson("mailbox uid flags guid text", ["mailbox", mailbox, "all"]));
      }
      expect((await doveadmJson("uid flags", ["mailbox", "INBOX", "all"])).map((m) => m.uid)).toEqual(["1", "4", "5"]);
      const status = await cli("mailbox", "status", "--json", "messages uidnext uidvalidity highestmodseq", "INBOX");
      const theirs = await o.mailboxStatus("messages uidnext uidvalidity highestmodseq", "INBOX");
      expect(JSON.parse(status)[0]).toEqual({ mailbox: "INBOX", ...theirs });
      o.assertNoStderrProblems();
    });
  }

  for (const format of ["mdbox", "sdbox", "maildir", "mbox"] as const) {
    it(`${format}: run as root on a store Dovecot's user owns, the CLI acts as that user: nothing it leaves is root's, and doveadm saves into a mailbox it created`, async () => {
      o = createOracle(format);
      await o.save("INBOX", sampleMessage(1));
      const owner = fs.statSync(o.root);
      expect(owner.uid).toBe(ORACLE_UID);
      // No chownRoot() anywhere below: that is the point.
      await cli("fetch", "uid flags", "mailbox", "INBOX", "all");
      await cli("mailbox", "create", "Foo");
      await saveStdin("Foo", sampleMessage(2));
      await cli("flags", "add", "\\Seen kw", "mailbox", "Foo", "all");
      await o.save("Foo", sampleMessage(3));
      expect((await o.fetch("uid", ["mailbox", "Foo", "all"])).map((r) => r.uid)).toEqual(["1", "2"]);
      const rootOwned: string[] = [];
      const walk = (p: string): void => {
        for (const e of fs.readdirSync(p, { withFileTypes: true })) {
          const full = path.join(p, e.name);
          if (fs.lstatSync(full).uid !== ORACLE_UID) rootOwned.push(path.relative(o.root, full));
          if (e.isDirectory()) walk(full);
        }
      };
      walk(o.root);
      expect(rootOwned).toEqual([]);
      o.assertNoStderrProblems();
    });

    it(`${format}: mailbox list shows what doveadm mailbox list shows (INBOX, parents of nested mailboxes)`, async () => {
      o = createOracle(format);
      const sep = format === "maildir" ? "." : "/";
      await o.mailboxCreate(`Dovecot${sep}Nested${sep}Deep`);
      await o.chownRoot();
      await cli("mailbox", "create", "Engine/Child", "Plain");
      await o.chownRoot();
      const theirs = (await o.mailboxList()).map((n) => n.split(sep).join("/")).sort();
      const ours = (await cli("mailbox", "list")).trim().split("\n").sort();
      expect(ours).toEqual(theirs);
      expect(ours).toEqual(expect.arrayContaining(["INBOX", "Dovecot", "Dovecot/Nested", "Engine", "Engine/Child", "Plain"]));
    });

    it(`${format}: a name that is only hierarchy: delete refuses it as doveadm does, rename moves its children`, async () => {
      o = createOracle(format);
      const sep = format === "maildir" ? "." : "/";
      await o.mailboxCreate(`P${sep}C1`);
      await o.mailboxCreate(`P${sep}C2${sep}G`);
      await o.save(`P${sep}C1`, sampleMessage(1));
      await o.chownRoot();
      const refused = await exec(process.execPath, [bin, "-l", o.location, "mailbox", "delete", "P/C2"], { env: { ...process.env, MAIL: "" } }).then(() => "", (err) => String(err.stderr));
      expect(refused).toMatch(format === "maildir" ? /does not exist/ : /has children, delete them first/);
      await cli("mailbox", "rename", "P", "Q");
      await o.chownRoot();
      expect((await o.mailboxList()).map((n) => n.split(sep).join("/")).sort()).toEqual(["INBOX", "Q", "Q/C1", "Q/C2", "Q/C2/G"]);
      expect((await o.fetch("uid", ["mailbox", `Q${sep}C1`, "all"])).map((r) => r.uid)).toEqual(["1"]);
      o.assertNoStderrProblems();
    });
  }
});
