import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fmt, versusDovecot } from "../util.js";
import { DoveadmRunner, timeMailstore, writeSampleMbox } from "../dovecot.js";

/**
 * Issue #4's side-by-side workload, whole processes on both sides, same input:
 * import a 20,000-message, 45 MB mbox into mdbox; flag all; expunge half;
 * purge; reopen; rebuild after index loss.
 */
export async function mdboxWorkloadBench(count = 20_000): Promise<string[]> {
  if (!DoveadmRunner.available()) return ["| mdbox workload | (needs doveadm and root) | | |"];
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-bench-mdbox-"));
  fs.chmodSync(work, 0o755);
  const mboxDir = path.join(work, "src");
  fs.mkdirSync(path.join(mboxDir, "mail"), { recursive: true });
  const inboxFile = path.join(mboxDir, "inbox");
  const bytes = writeSampleMbox(inboxFile, count, 2250);
  const source = `mbox:${mboxDir}/mail:INBOX=${inboxFile}`;
  const dovecotRoot = path.join(work, "dovecot");
  const engineRoot = path.join(work, "engine");
  fs.mkdirSync(dovecotRoot);
  const dovecot = new DoveadmRunner();
  dovecot.chown(work);
  const dl = `mdbox:${dovecotRoot}`;
  const el = `mdbox:${engineRoot}`;
  const half = `1:${count / 2}`;
  const steps: Array<[string, () => number, () => number]> = [
    [`import ${count.toLocaleString("en")} messages (${fmt(bytes / 1e6)} MB mbox)`,
      () => dovecot.run(dl, ["import", source, "", "all"]),
      () => timeMailstore(["-l", el, "import", source])],
    ["flag all \\Seen", () => dovecot.run(dl, ["flags", "add", "\\Seen", "mailbox", "INBOX", "all"]), () => timeMailstore(["-l", el, "flags", "add", "\\Seen", "mailbox", "INBOX", "all"])],
    [`expunge half (uid ${half})`, () => dovecot.run(dl, ["expunge", "mailbox", "INBOX", "uid", half]), () => timeMailstore(["-l", el, "expunge", "mailbox", "INBOX", "uid", half])],
    ["purge", () => dovecot.run(dl, ["purge"]), () => timeMailstore(["-l", el, "purge"])],
    ["reopen (mailbox status)", () => dovecot.run(dl, ["mailbox", "status", "messages uidnext highestmodseq", "INBOX"]), () => timeMailstore(["-l", el, "mailbox", "status", "messages uidnext highestmodseq", "INBOX"])],
    ["rebuild after index loss (force-resync)", () => { dropIndexes(dovecotRoot); return dovecot.run(dl, ["force-resync", "*"]); }, () => { dropIndexes(engineRoot); return timeMailstore(["-l", el, "force-resync", "*"]); }],
  ];
  const rows: string[] = [];
  try {
    for (const [label, theirs, ours] of steps) {
      const d = theirs();
      const e = ours();
      rows.push(`| mdbox: ${label} | engine ${fmt(e)} s | Dovecot ${fmt(d)} s | ${versusDovecot(e, d)} |`);
    }
  } finally {
    dovecot.cleanup();
    fs.rmSync(work, { recursive: true, force: true });
  }
  return rows;
}

/** Deletes every index file (mailbox indexes and the map), keeping the m.N files. */
function dropIndexes(root: string): void {
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.startsWith("dovecot.index") || e.name.startsWith("dovecot.map.index")) fs.rmSync(p);
    }
  };
  walk(root);
}
