import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { main } from "../../../src/cli/main.js";
import { TransactionLog } from "../../../src/log/log.js";
import { loadState } from "../../../src/index-io/load-state.js";
import { writeCheckpoint } from "../../../src/index-io/checkpoint-file.js";

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-cli-")); });
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (t) => void (out += typeof t === "string" ? t : Buffer.from(t).toString("latin1")), err: (t) => void (err += t), isTTY: false, readStdin: async () => Buffer.alloc(0), env: {} });
  return { code, out, err };
}

describe("mailstore CLI", () => {
  it("log, dump --json and export/import-events work on an engine log", async () => {
    const prefix = path.join(dir, "dovecot.index");
    const log = TransactionLog.open(prefix, { create: { initialRecords: [{ type: "header-update", external: true, sync: false, patches: [{ offset: 24, data: Uint8Array.of(1, 0, 0, 0) }] }] }, fsync: "never" });
    await log.append([
      { type: "append", external: true, sync: false, messages: [{ uid: 1, flags: 8 }] },
      { type: "keyword-update", external: false, sync: false, modifyType: "add", name: "$Label1", ranges: [{ uid1: 1, uid2: 1 }] },
    ]);
    await log.close();
    const text = await run("log", dir);
    expect(text.code).toBe(0);
    expect(text.out).toContain("append 1(\\Seen); keyword +$Label1 1");
    const json = await run("dump", "--json", prefix + ".log");
    const parsed = JSON.parse(json.out);
    expect(parsed.records.map((r: { type: string }) => r.type)).toEqual(["header-update", "boundary", "append", "keyword-update"]);
    expect(parsed.records.map((r: { modseq: number }) => r.modseq)).toEqual([1, 1, 2, 3]);
    const bundle = path.join(dir, "b.mp");
    expect((await run("export", dir, "-o", bundle)).code).toBe(0);
    expect((await run("import-events", bundle, path.join(dir, "copy"))).code).toBe(0);
    expect(fs.readFileSync(path.join(dir, "copy", "dovecot.index.log"))).toEqual(fs.readFileSync(prefix + ".log"));
    writeCheckpoint(prefix, loadState(prefix), { fsync: false });
    const dumped = await run("dump", "--json", prefix);
    expect(dumped.err).toBe("");
    const index = JSON.parse(dumped.out);
    expect(index.records).toMatchObject([{ uid: 1, flagNames: ["\\Seen"], keywords: ["$Label1"] }]);
    const replayed = JSON.parse((await run("replay", "--json", dir)).out);
    expect(replayed).toMatchObject({ header: { nextUid: 2, messagesCount: 1, highestModseq: 3 }, messages: [{ uid: 1, flags: ["\\Seen"], keywords: ["$Label1"] }] });
  });

  it("reports errors as one line with a non-zero exit code", async () => {
    fs.writeFileSync(path.join(dir, "bad.log"), Buffer.alloc(64, 0xff));
    const r = await run("dump", path.join(dir, "bad.log"));
    expect(r.code).not.toBe(0);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toContain("bad.log");
    expect((await run("log", "--help")).code).toBe(0);
  });

  it("verbs that work on existing mail create no store: a mistyped location is NOT_FOUND (68) and leaves nothing behind; an empty path is refused", async () => {
    for (const format of ["sdbox", "mdbox", "maildir", "mbox"]) {
      const root = path.join(dir, `typo-${format}`);
      for (const argv of [["fetch", "uid", "mailbox", "INBOX", "all"], ["mailbox", "list"], ["mailbox", "status", "messages", "INBOX"], ["flags", "add", "\\Seen", "mailbox", "INBOX", "all"], ["expunge", "mailbox", "INBOX", "all"], ["force-resync", "INBOX"]]) {
        const r = await run("-l", `${format}:${root}`, ...argv);
        expect(r.code, `${format} ${argv.join(" ")}: ${r.err}`).toBe(68);
        expect(fs.existsSync(root), `${format} ${argv.join(" ")} created ${root}`).toBe(false);
      }
      expect((await run("-l", `${format}:`, "mailbox", "list")).code).toBe(64);
    }
    // A verb that stores mail still creates the store it is pointed at.
    const r = await run("-l", `sdbox:${path.join(dir, "new")}`, "mailbox", "create", "Box");
    expect(r.code, r.err).toBe(0);
    expect(fs.existsSync(path.join(dir, "new"))).toBe(true);
  });

  it("a location error says where the location came from: -l, $MAIL, or the default", async () => {
    const missing = path.join(dir, "missing");
    expect((await run("-l", `sdbox:${missing}`, "mailbox", "list")).err).toContain(`; the location came from -l sdbox:${missing}`);
    let err = "";
    const io = { out: () => undefined, err: (t: string) => void (err += t), isTTY: false, readStdin: async () => Buffer.alloc(0) };
    expect(await main(["mailbox", "list"], { ...io, env: { MAIL: `maildir:${missing}` } })).toBe(68);
    expect(err).toContain(`; the location came from $MAIL=maildir:${missing}`);
    err = "";
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      expect(await main(["mailbox", "list"], { ...io, env: {} })).toBe(68);
    } finally {
      process.chdir(cwd);
    }
    expect(err).toContain(`; the location is the default, mdbox:${fs.realpathSync(dir)}/mail`);
  });

  it("an ambiguous location from $MAIL says it came from $MAIL", async () => {
    let err = "";
    const code = await main(["mailbox", "list"], { out: () => undefined, err: (t) => void (err += t), isTTY: false, readStdin: async () => Buffer.alloc(0), env: { MAIL: path.join(dir, "nowhere") } });
    expect(code).toBe(64);
    expect(err).toContain(`came from $MAIL=${path.join(dir, "nowhere")}`);
  });

  it("dump and replay refuse what is not a regular file before reading it (a device would be read forever), and a missing dovecot.index names its log", async () => {
    if (fs.existsSync("/dev/zero")) {
      const d = await run("dump", "/dev/zero");
      expect(d.code).toBe(64);
      expect(d.err).toContain("not a regular file");
      expect((await run("replay", "/dev/zero")).code).not.toBe(0);
    }
    const prefix = path.join(dir, "dovecot.index");
    await (TransactionLog.open(prefix, { create: {}, fsync: "never" })).close();
    const r = await run("dump", prefix);
    expect(r.code).toBe(68);
    expect(r.err).toContain(`dump ${prefix}.log`);
    fs.writeFileSync(path.join(dir, "text"), "hello");
    expect((await run("dump", path.join(dir, "text"))).err).toContain("Can't autodetect file type");
  });

  it("fetch text prints a message's bytes as stored: a Latin-1 body is not turned into U+FFFD", async () => {
    const body = Buffer.concat([Buffer.from("Subject: caf"), Buffer.from([0xe9]), Buffer.from("\n\nna"), Buffer.from([0xef]), Buffer.from("ve\n")]);
    const loc = `sdbox:${path.join(dir, "latin1")}`;
    const io = { out: () => undefined, err: () => undefined, isTTY: false, readStdin: async () => body, env: {} };
    expect(await main(["-l", loc, "save"], io)).toBe(0);
    const chunks: Buffer[] = [];
    const code = await main(["-l", loc, "fetch", "text", "mailbox", "INBOX", "all"], { ...io, out: (t) => void chunks.push(Buffer.from(t)) });
    expect(code).toBe(0);
    expect(Buffer.concat(chunks).equals(Buffer.concat([Buffer.from("text:\n"), body]))).toBe(true);
  });

  it("deleting a Maildir INBOX is refused with doveadm's 65, not a usage error", async () => {
    const loc = `maildir:${path.join(dir, "md")}`;
    expect((await run("-l", loc, "mailbox", "create", "Box")).code).toBe(0);
    const r = await run("-l", loc, "mailbox", "delete", "INBOX");
    expect(r.code).toBe(65);
    expect(r.err).toContain("INBOX can't be deleted");
  });

  it("refuses the mailbox names Dovecot refuses: dbox-Mails under sdbox/mdbox (it is the parent's mail), ~ levels, control characters; INBOX keeps its mail", async () => {
    for (const format of ["sdbox", "mdbox"]) {
      const loc = `${format}:${path.join(dir, format)}`;
      const io = { out: () => undefined, err: () => undefined, isTTY: false, readStdin: async () => Buffer.from("Subject: keep\n\nme\n"), env: {} };
      expect(await main(["-l", loc, "save"], io)).toBe(0);
      for (const bad of ["INBOX/dbox-Mails", "dbox-Mails", "a/dbox-Mails/b", "~x", "a/~b", "tab\there", "nl\nx"]) {
        const r = await run("-l", loc, "mailbox", "create", bad);
        expect(r.code, `${format} create ${JSON.stringify(bad)}`).toBe(64);
      }
      expect((await run("-l", loc, "mailbox", "create", "Box")).code).toBe(0);
      expect((await run("-l", loc, "mailbox", "rename", "Box", "INBOX/dbox-Mails")).code).toBe(64);
      const listed = await run("-l", loc, "fetch", "uid", "mailbox", "INBOX", "all");
      expect(listed.out, format).toContain("uid: 1");
    }
  });

  it("mailbox status takes names (INBOX in any case, a missing one is 68) and patterns, which match the listed mailboxes", async () => {
    const loc = `mdbox:${path.join(dir, "m")}`;
    expect((await run("-l", loc, "mailbox", "create", "INBOX", "A", "B/C")).code).toBe(0);
    expect((await run("-l", loc, "mailbox", "status", "messages", "inbox", "A")).out).toBe("INBOX messages=0\nA messages=0\n");
    expect((await run("-l", loc, "mailbox", "status", "messages", "B/%", "A")).out).toBe("B/C messages=0\nA messages=0\n");
    expect((await run("-l", loc, "mailbox", "status", "messages", "*")).out.split("\n").filter(Boolean).sort()).toEqual(["A messages=0", "B/C messages=0", "INBOX messages=0"]);
    expect((await run("-l", loc, "mailbox", "status", "messages", "Nope")).code).toBe(68);
  });

  it("exits 64 (EX_USAGE, as doveadm) for every parser error, 0 for help", async () => {
    for (const argv of [[], ["frobnicate"], ["dump"], ["log", "--no-such-option", "x"], ["mailbox", "status"]]) {
      expect((await run(...argv)).code, argv.join(" ") || "(no verb)").toBe(64);
    }
    expect((await run("--help")).code).toBe(0);
  });

  it("prints an error that quotes line breaks or control bytes from a damaged file on one line", async () => {
    const { oneLine } = await import("../../../src/cli/main.js");
    expect(oneLine("bad header \"From x\ny\r\tz\x1b[2J\x7f\x85\"")).toBe('bad header "From x\\ny\\r\\tz\\x1b[2J\\x7f\\x85"');
    expect(oneLine("Grüße, plain text")).toBe("Grüße, plain text");
  });

  it("refuses what doveadm refuses instead of doing nothing: a missing import source, a bad flag", async () => {
    const target = `sdbox:${path.join(dir, "target")}`;
    const missing = await run("-l", target, "import", `mbox:${path.join(dir, "nope")}`);
    expect(missing.code).not.toBe(0);
    expect(missing.err).toMatch(/nope: the source location does not exist/);
    expect(fs.existsSync(path.join(dir, "nope"))).toBe(false);
    const save = await main(["-l", target, "save"], { out: () => undefined, err: () => undefined, isTTY: false, readStdin: async () => Buffer.from("Subject: x\n\nx\n"), env: {} });
    expect(save).toBe(0);
    const bad = await run("-l", target, "flags", "add", "\\Bogus", "mailbox", "INBOX", "all");
    expect(bad.code).toBe(64);
    expect(bad.err).toMatch(/invalid system flag/);
    // Also when nothing matches, as doveadm checks its arguments first.
    expect((await run("-l", target, "flags", "add", "\\Bogus", "mailbox", "INBOX", "uid", "999")).code).toBe(64);
    // doveadm's exit codes: 68 for what does not exist.
    expect((await run("-l", target, "mailbox", "delete", "Nope")).code).toBe(68);
    expect(missing.code).toBe(68);
  });
});
