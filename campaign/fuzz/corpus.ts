/**
 * The fuzz corpus: real files, written by doveadm and then by the engine, in
 * every format. Built once per seed into a directory and reused from there,
 * so that `--seed S --input N` replays an input on the same bytes.
 * Layout: <dir>/manifest.json; <dir>/<format>/doveadm/ (the store as doveadm
 * left it), <dir>/<format>/store/ (after the engine's writes: the store the
 * subprocess sample damages), <dir>/<format>/bundle.{msgpack,json}.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { encodeBundle, exportBundle, openStorage } from "../../src/index.js";
import { createOracle, sampleMessage, type DovecotOracle, type MailFormat } from "../../test/helpers/dovecot-oracle.js";
import { BYSTANDER_MAILBOX } from "./store-work.js";
import type { FuzzTarget } from "./targets.js";

export interface CorpusEntry {
  readonly target: FuzzTarget;
  readonly format: MailFormat;
  /** Who wrote the file last. */
  readonly origin: "doveadm" | "engine";
  /** Path relative to the corpus directory. */
  readonly file: string;
  /** For files of <format>/store other than Other's own: the path inside that store. */
  readonly storeRel?: string;
}

export interface Corpus {
  readonly dir: string;
  readonly entries: readonly CorpusEntry[];
  /** Per format: the location of <format>/store with "{root}" for the store's root. */
  readonly locations: Partial<Record<MailFormat, string>>;
}

/** The corpus in `dir`: loaded when built before, else built (needs doveadm). */
export async function loadOrBuildCorpus(dir: string, formats: readonly MailFormat[]): Promise<Corpus> {
  const manifest = path.join(dir, "manifest.json");
  if (fs.existsSync(manifest)) {
    const corpus = JSON.parse(fs.readFileSync(manifest, "utf8")) as Corpus;
    if (formats.every((f) => corpus.locations[f] !== undefined)) return { ...corpus, dir };
  }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const entries: CorpusEntry[] = [];
  const locations: Partial<Record<MailFormat, string>> = {};
  for (const format of formats) {
    // Dovecot writes dovecot.index (and the map's) only once the log passed
    // mail_index_rewrite_min_log_bytes (8k): at 1, every sync writes them.
    const o = createOracle(format, { autoChown: true, settings: { mail_index_rewrite_min_log_bytes: "1", mail_index_rewrite_max_log_bytes: "1" } });
    try {
      await doveadmWrites(o);
      const doveadmDir = path.join(dir, format, "doveadm");
      fs.cpSync(o.root, doveadmDir, { recursive: true });
      await engineWrites(o);
      const storeDir = path.join(dir, format, "store");
      fs.cpSync(o.root, storeDir, { recursive: true });
      locations[format] = o.location.split(o.root).join("{root}");
      const seen = new Map<string, Buffer>();
      for (const rel of walk(doveadmDir)) {
        const target = targetOf(rel, format);
        if (!target) continue;
        seen.set(rel, fs.readFileSync(path.join(doveadmDir, rel)));
        entries.push({ target, format, origin: "doveadm", file: path.join(format, "doveadm", rel) });
      }
      for (const rel of walk(storeDir)) {
        const target = targetOf(rel, format);
        if (!target) continue;
        const unchanged = seen.get(rel)?.equals(fs.readFileSync(path.join(storeDir, rel)));
        // Other's own files are not placed in the store: Other is the mailbox that must not change.
        const bystanders = rel.split(path.sep).some((part) => part === BYSTANDER_MAILBOX || part === `.${BYSTANDER_MAILBOX}`);
        entries.push({ target, format, origin: unchanged ? "doveadm" : "engine", file: path.join(format, "store", rel), ...(bystanders ? {} : { storeRel: rel }) });
      }
      const bundle = exportBundle(path.join(o.mailboxIndexDir("INBOX"), "dovecot.index"));
      for (const encoding of ["msgpack", "json"] as const) {
        const file = path.join(format, `bundle.${encoding}`);
        fs.writeFileSync(path.join(dir, file), encodeBundle(bundle, encoding));
        entries.push({ target: "bundle", format, origin: "engine", file });
      }
    } finally {
      await o.cleanup();
    }
  }
  const corpus: Corpus = { dir, entries, locations };
  fs.writeFileSync(manifest, JSON.stringify(corpus, null, 1));
  return corpus;
}

/** doveadm fills INBOX and Other: flags, keywords, an expunge, a copy, subscriptions (and a purge and a rebuild for mdbox). */
async function doveadmWrites(o: DovecotOracle): Promise<void> {
  await o.mailboxCreate("Other");
  for (let i = 1; i <= 6; i++) await o.save("INBOX", sampleMessage(i));
  for (let i = 7; i <= 9; i++) await o.save("Other", sampleMessage(i));
  await o.flags("add", "\\Seen $Label1 work", "mailbox INBOX uid 1:3");
  await o.flags("remove", "work", "mailbox INBOX uid 2");
  await o.flags("add", "\\Flagged other", "mailbox Other uid 1");
  // Rotated here: the corpus gets a .log.2 and a .log that continues it.
  await o.expunge("mailbox INBOX uid 4", { extraSettings: { mail_index_log_rotate_max_size: "1" } });
  await o.copy("Other", "mailbox INBOX uid 1");
  await o.run(["mailbox", "subscribe", "INBOX", "Other"]);
  if (o.format === "mdbox") {
    await o.purge();
    // Only a rebuild makes doveadm write dovecot.map.index (purge and saves leave the map's log alone).
    await o.forceResync("*");
  }
}

/** The engine continues: saves with flags and keywords, a flag change, an expunge, a copy, a subscription. */
async function engineWrites(o: DovecotOracle): Promise<void> {
  const storage = openStorage(o.location);
  try {
    const inbox = await storage.openMailbox("INBOX");
    const other = await storage.openMailbox("Other");
    await inbox.refresh();
    const { appendedUids } = await inbox.transaction()
      .append({ body: sampleMessage(20), flags: ["\\Answered", "engine"] })
      .append({ body: sampleMessage(21), flags: ["$Label1"] })
      .append({ body: sampleMessage(22) })
      .commit();
    await inbox.transaction().flags([{ uid1: 1, uid2: appendedUids[0] }], "add", ["\\Draft", "late"]).expunge([{ uid1: appendedUids[2], uid2: appendedUids[2] }]).commit();
    await inbox.transaction().copyTo(other, [{ uid1: appendedUids[1], uid2: appendedUids[1] }]);
    await inbox.refresh();
    await other.refresh();
    await storage.subscribe("Engine");
  } finally {
    await storage.close();
  }
}

function walk(root: string, rel = ""): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) out.push(...walk(root, r));
    else if (e.isFile()) out.push(r);
  }
  return out;
}

/** Which reader a store file goes to, or undefined (message files, caches, markers). */
export function targetOf(rel: string, format: MailFormat): FuzzTarget | undefined {
  const name = path.basename(rel);
  if (/^dovecot(\.map|\.list)?\.index\.log(\.2)?$/.test(name)) return "log";
  if (name === "dovecot.map.index") return "map-index";
  if (name === "dovecot.index" || name === "dovecot.list.index") return "index";
  if (/^[um]\.\d+$/.test(name)) return "dbox";
  if (name === "dovecot-uidlist") return "uidlist";
  if (name === "dovecot-keywords") return "keywords";
  if (name === "subscriptions" || name === ".subscriptions") return "subscriptions";
  if (format === "mbox" && (rel === "inbox" || (rel.startsWith("mail/") && !name.startsWith(".") && !rel.includes("/.imap/")))) return "mbox";
  return undefined;
}
