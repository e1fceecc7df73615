import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterEach, expect, it } from "vitest";
import { createOracle, describeInterop, MAIL_FORMATS, ORACLE_GID, ORACLE_UID, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";
import { describeTree, modeBits } from "../helpers/tree.js";

const exec = promisify(execFile);
const bin = path.resolve(__dirname, "../../bin/mailstore.js");

/** Relative path (names that differ from store to store normalized) → permission bits, for everything under `root`. */
function modes(root: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [rel, mode] of describeTree(root, (_, st) => `${st.isDirectory() ? "d" : "f"}${modeBits(st)}`)) {
    // Message files of Maildir and the UIDVALIDITY marker have names of their own in each store.
    out.set(rel.replace(/(^|\/)(cur|new)\/[^/]+$/, "$1$2/<message>").replace(/dovecot-uidvalidity\.[0-9a-f]{8}$/, "dovecot-uidvalidity.<hex>"), mode);
  }
  return out;
}

describeInterop("file modes: a store the engine writes has the modes of its twin written by doveadm", () => {
  let dovecot: DovecotOracle;
  let engine: DovecotOracle;
  afterEach(async () => {
    await dovecot?.cleanup();
    await engine?.cleanup();
  });

  for (const shared of [false, true]) {
    for (const format of MAIL_FORMATS) {
      it(`${format}: ${shared ? "inside a group-shared 0770 root" : "a new root"}: every path both stores have has the same mode`, async () => {
        dovecot = createOracle(format);
        engine = createOracle(format);
        for (const o of shared ? [dovecot, engine] : []) {
          if (!fs.existsSync(o.root)) fs.mkdirSync(o.root);
          fs.chmodSync(o.root, 0o770);
          fs.chownSync(o.root, ORACLE_UID, ORACLE_GID);
        }
        // The same work on each: a mailbox, messages in both, a keyword (dovecot-keywords on Maildir).
        await dovecot.mailboxCreate("Work");
        await dovecot.save("INBOX", sampleMessage(1));
        await dovecot.save("Work", sampleMessage(2));
        await dovecot.flags("add", "\\Seen todo", "mailbox INBOX uid 1");
        const cli = (...args: string[]) => exec(process.execPath, [bin, "-l", engine.location, ...args], { env: { ...process.env, MAIL: "" } });
        await cli("mailbox", "create", "Work");
        for (const [box, i] of [["INBOX", 1], ["Work", 2]] as const) {
          await new Promise<void>((resolve, reject) => {
            const child = execFile(process.execPath, [bin, "-l", engine.location, "save", "-m", box], (err) => (err ? reject(err) : resolve()));
            child.stdin!.end(sampleMessage(i));
          });
        }
        await cli("flags", "add", "\\Seen todo", "mailbox", "INBOX", "uid", "1");

        const theirs = modes(dovecot.root);
        const ours = modes(engine.root);
        const common = [...ours.keys()].filter((p) => theirs.has(p));
        const differ = common.filter((p) => ours.get(p) !== theirs.get(p)).map((p) => `${p}: ours ${ours.get(p)}, doveadm's ${theirs.get(p)}`);
        expect(differ).toEqual([]);
        // What is compared covers the store: the root, mailbox directories, logs and message files.
        expect(common.filter((p) => /dovecot\.index\.log$/.test(p)).length).toBeGreaterThanOrEqual(2);
        expect(common.length).toBeGreaterThanOrEqual(format === "mbox" ? 8 : 10);
        // Whatever only one store has (Dovecot's list index, our journal) is never wider than the root Dovecot made.
        const rootBits = parseInt(theirs.get(".")!.slice(1), 8) & 0o777;
        const wide = [...ours].filter(([p, m]) => !theirs.has(p)).filter(([p, m]) => {
          const bits = parseInt(m.slice(1), 8) & 0o777;
          const allowed = m.startsWith("d") ? rootBits : /dovecot-uidvalidity\./.test(p) ? 0o444 : (rootBits & 0o666) | 0o600;
          return (bits & ~allowed) !== 0;
        });
        expect(wide).toEqual([]);
        dovecot.assertNoStderrProblems();
      });
    }
  }
});
