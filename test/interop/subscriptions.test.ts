import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { takeDotlock } from "../../src/drivers/dotlock.js";
import { openStorage, type Storage } from "../../src/index.js";
import { createOracle, describeInterop, MAIL_FORMATS, type DovecotOracle, type MailFormat } from "../helpers/dovecot.js";

/** main()'s stop signal; the default one adds process signal listeners per call. */
/** Names as the API spells them ("/"); none of them exists as a mailbox. */
const NAMES = ["INBOX", "a/b", "Grüße/日本", "&lit", "back\\slash", "tab\tx"];

describeInterop("IMAP subscriptions against doveadm (all four formats)", () => {
  let o: DovecotOracle;
  let storage: Storage;
  afterEach(async () => {
    await storage?.close();
    await o?.cleanup();
  });

  function setUp(format: MailFormat): void {
    // The engine runs as root: files it creates (e.g. dovecot.mailbox.log) must be Dovecot's before Dovecot writes.
    o = createOracle(format, { autoChown: true });
    storage = openStorage(o.location);
  }
  /** The name doveadm uses for an API name ("." between levels for Maildir++). */
  const vname = (name: string) => name.split("/").join(o.separator);
  /** `doveadm mailbox list -s`, as API names. */
  const doveadmSubscribed = (): Promise<string[]> => o.mailboxListSubscribed();
  const subscriptionsFile = () => (o.format === "mbox" ? path.join(o.root, "mail", ".subscriptions") : path.join(o.root, "subscriptions"));
  const mailboxLog = () => path.join(o.format === "mbox" ? path.join(o.root, "mail", ".imap") : o.root, "dovecot.mailbox.log");
  const cli = async (...argv: string[]) => {
    let out = "";
    let err = "";
    const code = await main(["-l", o.location, ...argv], { out: (t) => void (out += typeof t === "string" ? t : Buffer.from(t).toString("latin1")), err: (t) => void (err += t), isTTY: false, readStdin: async () => Buffer.alloc(0), env: {} });
    expect(err).toBe("");
    expect(code).toBe(0);
    return out;
  };

  for (const format of MAIL_FORMATS) {
    it(`${format}: what doveadm subscribes, the engine lists; the engine writes the bytes doveadm writes`, async () => {
      setUp(format);
      await o.run(["mailbox", "subscribe", ...NAMES.map(vname)]);
      await o.run(["mailbox", "subscribe", "inbox"]); // no change: already subscribed
      expect(await storage.listSubscriptions()).toEqual(NAMES);
      expect([...(await doveadmSubscribed())].sort()).toEqual([...NAMES].sort());
      const dovecotBytes = fs.readFileSync(subscriptionsFile());
      const dovecotLog = await o.dump(mailboxLog(), "mailboxlog");

      // The same subscriptions made by the engine in a fresh storage.
      await storage.close();
      await o.cleanup();
      setUp(format);
      for (const name of NAMES) expect(await storage.subscribe(name)).toBe(true);
      expect(await storage.subscribe("inbox")).toBe(false);
      expect(fs.readFileSync(subscriptionsFile())).toEqual(dovecotBytes);
      expect(fs.existsSync(subscriptionsFile() + ".lock")).toBe(false);
      // dovecot.mailbox.log: the same records (the times aside).
      const strip = (dump: string) => dump.replace(/ \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)/g, "");
      expect(strip(await o.dump(mailboxLog(), "mailboxlog"))).toBe(strip(dovecotLog));
      expect(await doveadmSubscribed()).toEqual(NAMES);
      o.assertNoStderrProblems();
    });

    it(`${format}: engine subscribes and unsubscribes, doveadm mailbox list -s shows exactly that`, async () => {
      setUp(format);
      await storage.createMailbox("Real");
      await storage.subscribe("Real");
      await storage.subscribe("Gone/Child");
      await storage.subscribe("Grüße");
      await storage.subscribe("Inbox");
      expect(await storage.unsubscribe("Gone/Child")).toBe(true);
      expect(await storage.unsubscribe("Gone/Child")).toBe(false);
      expect(await doveadmSubscribed()).toEqual(["Real", "Grüße", "INBOX"]);
      // doveadm's `list -s` with a pattern, and the unsubscribe it logs.
      const { stdout } = await o.run(["mailbox", "list", "-s", "G*"]);
      expect(stdout).toBe("Grüße\n");
      expect(await o.dump(mailboxLog(), "mailboxlog")).toMatch(/#96: unsubscribe [0-9a-f]{32} /);
      o.assertNoStderrProblems();
    });

    it(`${format}: interleaved: Dovecot, then the engine, then Dovecot again`, async () => {
      setUp(format);
      await o.run(["mailbox", "subscribe", "INBOX", vname("d1/x"), "d2"]);
      await storage.subscribe("e1/y");
      await storage.unsubscribe("d2");
      expect(await doveadmSubscribed()).toEqual(["INBOX", "d1/x", "e1/y"]);
      await o.run(["mailbox", "unsubscribe", vname("e1/y"), "INBOX"]);
      await o.run(["mailbox", "subscribe", "d3"]);
      expect(await storage.listSubscriptions()).toEqual(["d1/x", "d3"]);
      await storage.subscribe("e2");
      await o.run(["mailbox", "unsubscribe", vname("d1/x")]);
      expect(await storage.listSubscriptions()).toEqual(["d3", "e2"]);
      expect(await doveadmSubscribed()).toEqual(["d3", "e2"]);
      o.assertNoStderrProblems();
    });

    it(`${format}: Dovecot waits while the engine holds the subscriptions dotlock`, async () => {
      setUp(format);
      await storage.subscribe("mine");
      const lock = await takeDotlock(subscriptionsFile());
      const dovecot = o.run(["mailbox", "subscribe", "dove"]);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(fs.readFileSync(subscriptionsFile(), "utf8")).toBe("V\t2\n\nmine\n");
      lock.release();
      await dovecot;
      expect(await storage.listSubscriptions()).toEqual(["mine", "dove"]);
      o.assertNoStderrProblems();
    });

    it(`${format}: mailstore mailbox subscribe / unsubscribe / list -s, as doveadm's verbs`, async () => {
      setUp(format);
      await cli("mailbox", "subscribe", "INBOX", "x/y", "z");
      await cli("mailbox", "unsubscribe", "z");
      expect(await doveadmSubscribed()).toEqual(["INBOX", "x/y"]);
      await o.run(["mailbox", "subscribe", "w"]);
      expect(await cli("mailbox", "list", "-s")).toBe("INBOX\nx/y\nw\n");
      expect(await cli("mailbox", "list", "-s", "x*", "nothere")).toBe("x/y\n");
      o.assertNoStderrProblems();
    });
  }
});
