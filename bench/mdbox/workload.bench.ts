import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fmt, versusDovecot } from "../util.js";
import { DoveadmRunner, timeMailstore, writeSampleMbox } from "../dovecot.js";
import { importMailboxes } from "../../src/convert/import.js";
import { openStorage, type Storage } from "../../src/index.js";

/**
 * Issue #4's side-by-side workload, whole processes on both sides, same input:
 * import a 20,000-message, 45 MB mbox into mdbox; fetch every message's
 * text; flag all; expunge half;
 * purge; reopen; rebuild after index loss. A third copy runs the same steps
 * embedded (the engine as a server uses it: one process, storage opened once),
 * which separates the engine's work from Node's start-up and module loading.
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
  const embeddedRoot = path.join(work, "embedded");
  const embedded = new EmbeddedSteps(`mdbox:${embeddedRoot}`, source, count / 2);
  const half = `1:${count / 2}`;
  const steps: Array<[string, () => number, () => number, () => Promise<number>]> = [
    [`import ${count.toLocaleString("en")} messages (${fmt(bytes / 1e6)} MB mbox)`,
      () => dovecot.run(dl, ["import", source, "", "all"]),
      () => timeMailstore(["-l", el, "import", source]),
      () => embedded.import()],
    ["fetch text all", () => dovecot.run(dl, ["fetch", "text", "mailbox", "INBOX", "all"]), () => timeMailstore(["-l", el, "fetch", "text", "mailbox", "INBOX", "all"]), () => embedded.fetchAll()],
    ["flag all \\Seen", () => dovecot.run(dl, ["flags", "add", "\\Seen", "mailbox", "INBOX", "all"]), () => timeMailstore(["-l", el, "flags", "add", "\\Seen", "mailbox", "INBOX", "all"]), () => embedded.flagAll()],
    [`expunge half (uid ${half})`, () => dovecot.run(dl, ["expunge", "mailbox", "INBOX", "uid", half]), () => timeMailstore(["-l", el, "expunge", "mailbox", "INBOX", "uid", half]), () => embedded.expungeHalf()],
    ["purge", () => dovecot.run(dl, ["purge"]), () => timeMailstore(["-l", el, "purge"]), () => embedded.purge()],
    ["reopen (mailbox status)", () => dovecot.run(dl, ["mailbox", "status", "messages uidnext highestmodseq", "INBOX"]), () => timeMailstore(["-l", el, "mailbox", "status", "messages uidnext highestmodseq", "INBOX"]), () => embedded.reopen()],
    ["rebuild after index loss (force-resync)", () => { dropIndexes(dovecotRoot); return dovecot.run(dl, ["force-resync", "*"]); }, () => { dropIndexes(engineRoot); return timeMailstore(["-l", el, "force-resync", "*"]); }, () => { dropIndexes(embeddedRoot); return embedded.rebuild(); }],
  ];
  const rows: string[] = [];
  try {
    for (const [label, theirs, ours, inProcess] of steps) {
      const d = theirs();
      const e = ours();
      const m = await inProcess();
      rows.push(`| mdbox: ${label} | engine ${fmt(e)} s (embedded: ${fmt(m)} s) | Dovecot ${fmt(d)} s | ${versusDovecot(e, d)} (embedded: ${versusDovecot(m, d)}) |`);
    }
  } finally {
    await embedded.close();
    dovecot.cleanup();
    fs.rmSync(work, { recursive: true, force: true });
  }
  return rows;
}

/** The workload's steps through the API in this process, timed in seconds. */
class EmbeddedSteps {
  private storage: Storage;

  constructor(private readonly location: string, private readonly source: string, private readonly half: number) {
    this.storage = openStorage(location);
  }

  private async timed(fn: () => Promise<unknown>): Promise<number> {
    const t0 = process.hrtime.bigint();
    await fn();
    return Number(process.hrtime.bigint() - t0) / 1e9;
  }

  import(): Promise<number> {
    return this.timed(async () => {
      const source = openStorage(this.source);
      await importMailboxes(source, this.storage);
      await source.close();
    });
  }

  private inbox(fn: (box: Awaited<ReturnType<Storage["openMailbox"]>>) => Promise<unknown>): Promise<number> {
    return this.timed(async () => {
      const box = await this.storage.openMailbox("INBOX");
      await fn(box);
      await box.close();
    });
  }

  /** Every message's text, read as a server streams a FETCH of them all. */
  fetchAll(): Promise<number> {
    return this.inbox(async (box) => {
      const all = { *[Symbol.iterator]() { for (let uid = 1; uid < box.state.header.nextUid; uid++) yield uid; } };
      let bytes = 0;
      for await (const m of box.fetch(all, ["body"])) bytes += m.body.length;
      if (bytes === 0) throw new Error("fetch read nothing");
    });
  }

  flagAll(): Promise<number> {
    return this.inbox((box) => box.transaction().flags([{ uid1: 1, uid2: 0xffffffff }], "add", ["\\Seen"]).commit());
  }

  expungeHalf(): Promise<number> {
    return this.inbox((box) => box.transaction().expunge([{ uid1: 1, uid2: this.half }]).commit());
  }

  purge(): Promise<number> {
    return this.timed(() => this.storage.purge());
  }

  /** A fresh storage, as a new server process would open it. */
  reopen(): Promise<number> {
    return this.timed(async () => {
      await this.storage.close();
      this.storage = openStorage(this.location);
      const box = await this.storage.openMailbox("INBOX");
      await box.refresh();
      await box.close();
    });
  }

  rebuild(): Promise<number> {
    return this.timed(async () => {
      await this.storage.close();
      this.storage = openStorage(this.location);
      await this.storage.forceResync("*");
    });
  }

  close(): Promise<void> {
    return this.storage.close();
  }
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
