import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { DoveadmError, DovecotOracle, MAIL_FORMATS, describeInterop, parseFlags, sampleMessage } from "../helpers/dovecot.js";
import { parseIndexDump, parseLogDump } from "../helpers/doveadm-dump.js";

describeInterop("doveadm oracle harness", () => {
  for (const format of MAIL_FORMATS) {
    describe(format, () => describeInteropFormat(format));
  }
});

function describeInteropFormat(format: (typeof MAIL_FORMATS)[number]): void {
  let o: DovecotOracle;
  beforeAll(() => {
    o = new DovecotOracle(format);
  });
  afterAll(async () => {
    await o?.cleanup();
  });

  it(`${format}: save, flag, expunge, fetch, dump`, async () => {
    const sub = format === "maildir" ? "Sub.Child" : "Sub/Child";
    // mbox: "Sub" would be a mail file that cannot have children; "Sub/Child"
    // creates the directory Sub/ implicitly (listed as a \NoSelect "Sub").
    if (format !== "mbox") await o.mailboxCreate("Sub");
    await o.mailboxCreate(sub);
    expect((await o.mailboxList()).sort()).toEqual(["INBOX", "Sub", sub].sort());

    for (let i = 1; i <= 3; i++) await o.save("INBOX", sampleMessage(i));
    await o.flags("add", "\\Seen \\Flagged $Label1", ["mailbox", "INBOX", "uid", "1"]);
    await o.flags("add", "\\Answered", "mailbox INBOX uid 3");
    await o.expunge(["mailbox", "INBOX", "uid", "2"]);
    await o.copy(sub, ["mailbox", "INBOX", "uid", "1"]);

    const rows = await o.fetch("uid flags guid text", ["mailbox", "INBOX", "all"]);
    expect(rows.map((r) => Number(r.uid))).toEqual([1, 3]);
    expect(parseFlags(rows[0].flags).sort()).toEqual(["$Label1", "\\Flagged", "\\Seen"].sort());
    expect(parseFlags(rows[1].flags)).toEqual(["\\Answered"]);
    expect(rows[0].guid).toMatch(/\S/);
    expect(rows[0].text).toContain("Subject: Test message 1\n");
    expect(rows[1].text).toContain("Body of message 3.\n");
    expect(await o.fetchFlags(sub)).toEqual([{ uid: 1, flags: expect.arrayContaining(["\\Seen", "$Label1"]) }]);

    const text = await o.fetchText("INBOX", 3);
    expect(text.toString("utf8")).toContain(sampleMessage(3).split("\n\n")[1]);

    const st = await o.mailboxStatus("messages uidnext uidvalidity highestmodseq", "INBOX");
    expect(st).toMatchObject({ mailbox: "INBOX", messages: "2", uidnext: "4" });
    expect(Number(st.highestmodseq)).toBeGreaterThan(1);

    // Transaction log of INBOX, via the per-format path helper.
    const logPath = o.mailboxLogPath("INBOX");
    expect(fs.existsSync(logPath)).toBe(true);
    const log = parseLogDump(await o.dump(logPath, "log"));
    expect(log.header["version"]).toBe("1.3");
    expect(log.header["hdr size"]).toBe(40);
    expect(log.records.length).toBeGreaterThan(0);
    expect(log.records[0].offset).toBe(40);
    const types = new Set(log.records.map((r) => r.type));
    expect(types.has("append")).toBe(true);
    expect(types.has("flag-update")).toBe(true);
    expect(types.has("keyword-update")).toBe(true);
    expect(types.has("expunge-guid")).toBe(true);
    const appends = log.records.filter((r) => r.type === "append");
    expect(appends.flatMap((r) => r.fields.uids.split(","))).toEqual(["1", "2", "3"]);
    expect(appends.every((r) => typeof r.modseq === "number")).toBe(true);
    const kw = log.records.find((r) => r.type === "keyword-update")!;
    expect(kw.fields).toMatchObject({ modify: "0", name: "$Label1", uids: "1-1" });
    // records are contiguous
    for (let i = 1; i < log.records.length; i++)
      expect(log.records[i].offset).toBe(log.records[i - 1].offset + log.records[i - 1].size);

    // Index view (log replayed on top of dovecot.index, if any).
    const idx = await o.dumpIndex(o.mailboxIndexDir("INBOX"));
    expect(idx.header["messages count"]).toBe(2);
    expect(idx.header["next uid"]).toBe(4);
    expect(idx.records.map((r) => r.uid)).toEqual([1, 3]);
    expect(idx.records[0].systemFlags.sort()).toEqual(["\\Flagged", "\\Seen"].sort());
    expect(idx.records[0].keywords).toEqual(["$Label1"]);
    expect(idx.records[1].systemFlags).toEqual(["\\Answered"]);
    expect(idx.keywords).toContain("$Label1");

    // Sub-mailbox index dir and list index exist where the helpers say.
    expect(fs.existsSync(path.join(o.mailboxIndexDir(sub), "dovecot.index.log"))).toBe(true);
    expect(fs.existsSync(path.join(o.listIndexDir(), "dovecot.list.index.log"))).toBe(true);
    if (format === "mdbox") {
      const map = await o.dumpLog(path.join(o.storageDir(), "dovecot.map.index.log"));
      expect(map.records.some((r) => r.type === "ext-atomic-inc")).toBe(true);
      await o.purge();
    }

    await o.forceResync("INBOX");
    expect((await o.fetchFlags("INBOX")).map((r) => r.uid)).toEqual([1, 3]);
    await o.mailboxDelete(sub);
    expect(await o.mailboxList()).not.toContain(sub);
    o.assertNoStderrProblems();

    // Errors carry stderr and the exit code.
    const err = await o.run(["mailbox", "status", "nosuchfield", "INBOX"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DoveadmError);
    expect((err as DoveadmError).code).toBe(64);
    expect((err as DoveadmError).message).toContain("Unknown status field");
    expect(o.lastStderrProblems()).toHaveLength(1);
  });
}

// Parser unit checks on real captured output (run even without doveadm).
it("parseLogDump handles every line shape", () => {
  const text = [
    "version = 1.3",
    "hdr size = 40",
    "index id = 1795425878",
    "file seq = 3",
    "prev file = 2/1020",
    "create stamp = 1795425878",
    "initial modseq = 13",
    "compat flags = 1",
    "record: offset=40, type=ext-intro, size=36",
    " - ext_id = 4294967295",
    " - name = 'dbox-hdr'",
    "record: offset=76, type=ext-hdr, size=36",
    " - offset = 0, size = 4: 00000000 (dec=0)",
    "record: offset=112, type=header-update (ext), size=48",
    " - day_stamp = 1795392000",
    " - offset = 88, size = 4: 01000000 (dec=1)",
    "record: offset=160, type=append (ext) (sync), size=24, modseq=14",
    " - uids=1 (flags=2),2,",
    "record: offset=184, type=flag-update, size=20, modseq=15",
    " - uids=1-1 (flags +a-0, modseq_inc_flag=0)",
    "record: offset=204, type=keyword-update, size=28, modseq=16",
    " - modify=0, name=$Label1, uids=1-1,",
    "record: offset=232, type=expunge-guid (ext), size=48, modseq=17",
    " - uid=2 (guid 00000000000000000000000000000000)",
    " - uid=3 (guid 11111111111111111111111111111111)",
    "record: offset=280, type=ext-atomic-inc, size=16",
    " - uid=1: -1",
    "record: offset=296, type=modseq-update (ext), size=20, modseq=100",
    " - uid=0 modseq=100",
    "record: offset=316, type=boundary (ext), size=12",
    " - size=96",
    "record: offset=328, type=attribute-update, size=28, modseq=101",
    " - add: private/comment : timestamp=2026-11-23 09:26:37 value_len=5",
    "record: offset=356, type=unknown: 0, size=broken (0)",
  ].join("\n");
  const d = parseLogDump(text);
  expect(d.header).toMatchObject({ version: "1.3", "hdr size": 40, "prev file seq": 2, "prev file offset": 1020, "compat flags": 1 });
  const [intro, hdr, hu, app, fu, kw, eg, ai, mu, b, au, broken] = d.records;
  expect(intro.fields).toEqual({ ext_id: "4294967295", name: "dbox-hdr" });
  expect(hdr.fields).toEqual({ offset: "0", size: "4", data: "00000000", dec: "0" });
  expect(hu).toMatchObject({ external: true, fields: { day_stamp: "1795392000", offset: "88" } });
  expect(app).toMatchObject({ type: "append", external: true, sync: true, modseq: 14, fields: { uids: "1,2", flags: "1:2" } });
  expect(fu.fields).toMatchObject({ uid1: "1", uid2: "1", add: "a", remove: "0" });
  expect(kw.fields).toEqual({ modify: "0", name: "$Label1", uids: "1-1" });
  expect(eg.fields.uid).toBe("2,3");
  expect(eg.items[1]).toEqual({ uid: "3", guid: "11111111111111111111111111111111" });
  expect(ai.fields).toEqual({ uid: "1", diff: "-1" });
  expect(mu).toMatchObject({ modseq: 100, fields: { uid: "0", modseq: "100" } });
  expect(b.modseq).toBeUndefined();
  expect(b.fields).toEqual({ size: "96" });
  expect(au.fields).toMatchObject({ op: "add", scope: "private", key: "comment", value_len: "5" });
  expect(broken).toMatchObject({ type: "unknown: 0", size: 0, fields: { broken: "0" } });
});

it("parseIndexDump handles records, extensions and keywords", () => {
  const text = [
    "-- INDEX: /x/dovecot.index",
    "version .................. = 7.3",
    "index id ................. = 1795425878 (2026-11-23 09:24:38)",
    "next uid ................. = 4",
    "first unseen uid lowwater  = 0",
    "day first uid[0] ......... = 1",
    "-- Extension 0 --",
    "name ........ = modseq",
    "hdr_size .... = 16",
    "reset_id .... = 0",
    "record_offset = 8",
    "record_size . = 8",
    "record_align  = 8",
    "header",
    " - highest_modseq = 102",
    "-- Extension 1 --",
    "name ........ = list",
    "hdr_size .... = 32",
    "header ........ = 0001000000494e424f5800",
    " - refresh_flag = 0",
    " - 1 : INBOX",
    "-- Keywords --",
    "  0 = kw1",
    "  1 = kw2",
    "",
    "-- CACHE: /x/dovecot.index.cache",
    "cache is unusable",
    "",
    "-- RECORDS: 2",
    "RECORD: seq=1, uid=1, flags=0x08 (Seen)",
    " - ext 0 keywords  :            (0200)",
    " - ext 1 modseq    :         10 (0a00000000000000)",
    " - ext 2 map       :            (0200000010000000db000000)",
    "                   : file_id = 2",
    "                   : offset  = 16",
    " - ext 5 index sync:            (a0010000d706046b)",
    " - cache offset=388 size=64, prev_offset = 0",
    "    - guid: b5c6f81b5606046bb516000083ecc375",
    "",
    "RECORD: seq=2, uid=3, flags=0x00 ",
    "",
  ].join("\n");
  const d = parseIndexDump(text);
  expect(d.header).toMatchObject({ version: "7.3", "index id": 1795425878, "next uid": 4, "first unseen uid lowwater": 0, "day first uid[0]": 1 });
  expect(d.extensions[0]).toMatchObject({ id: 0, name: "modseq", hdrSize: 16, recordSize: 8, recordAlign: 8, header: { highest_modseq: "102" } });
  expect(d.extensions[1]).toMatchObject({ name: "list", headerHex: "0001000000494e424f5800", header: { refresh_flag: "0", "1": "INBOX" } });
  expect(d.keywords).toEqual(["kw1", "kw2"]);
  expect(d.cache?.usable).toBe(false);
  expect(d.recordsCount).toBe(2);
  expect(d.records[0]).toMatchObject({ seq: 1, uid: 1, flags: 8, systemFlags: ["\\Seen"], keywords: ["kw2"], modseq: 10 });
  expect(d.records[0].ext["map"].details).toEqual({ file_id: "2", offset: "16" });
  expect(d.records[0].ext["index sync"].hex).toBe("a0010000d706046b");
  expect(d.records[0].cache.guid).toBe("b5c6f81b5606046bb516000083ecc375");
  expect(d.records[1]).toMatchObject({ uid: 3, flags: 0, systemFlags: [], keywords: [] });
});
