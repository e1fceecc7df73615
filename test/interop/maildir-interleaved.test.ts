/**
 * The engine, Dovecot and a "mail client" renaming files take turns on one
 * Maildir (a seeded random sequence); after every step the engine's state
 * equals what `doveadm fetch` reports — UIDs, flags, keywords — and at the
 * end also GUIDs and bodies. Who syncs first alternates, so pending flag
 * changes are applied to the files sometimes by the engine, sometimes by
 * Dovecot.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect, it } from "vitest";
import { flagNames, messageCount, recordAt, type Mailbox } from "../../src/index.js";
import { createOracle, describeInterop, parseFlags, sampleMessage, type DovecotOracle } from "../helpers/dovecot.js";
import { openMaildirStorage } from "../unit/drivers/maildir/open-storage.js";
import { prng } from "../../campaign/lib/rng.js";


const FLAGS = ["\\Seen", "\\Flagged", "\\Answered", "$Label1", "work"];

function engineView(box: Mailbox) {
  const out = [];
  for (let seq = 1; seq <= messageCount(box.state); seq++) {
    const r = recordAt(box.state, seq)!;
    out.push({ uid: r.uid, flags: [...flagNames(r.flags), ...r.keywords].sort() });
  }
  return out;
}

async function dovecotView(o: DovecotOracle) {
  return (await o.fetch("uid flags", ["mailbox", "INBOX", "all"])).map((r) => ({ uid: Number(r.uid), flags: parseFlags(r.flags).sort() }));
}

describeInterop("Maildir: engine, Dovecot and outside renames interleaved", () => {
  it("agree after every step of a seeded random sequence", async () => {
    const seed = Number(process.env.MAILDIR_SEED ?? 20261123);
    const random = prng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
    const someFlags = () => FLAGS.filter(() => random() < 0.35);
    const o = createOracle("maildir", { autoChown: true });
    const storage = openMaildirStorage(o.location);
    const box = await storage.openMailbox("INBOX");
    let n = 0;
    const log: string[] = [];
    try {
      for (let step = 0; step < 36; step++) {
        const uids = engineView(box).map((m) => m.uid);
        const uid = uids.length > 0 ? pick(uids) : 0;
        const r = random();
        let what: string;
        if (r < 0.15 || uids.length < 2) {
          what = "engine append";
          await box.transaction().append({ body: sampleMessage(++n), flags: someFlags() }).commit();
        } else if (r < 0.3) {
          const action = random() < 0.6 ? "add" : "remove";
          const flags = someFlags();
          what = `engine flags ${action} ${flags.join(" ")} uid ${uid}`;
          if (flags.length > 0) await box.transaction().flags([{ uid1: uid, uid2: uid }], action, flags).commit();
        } else if (r < 0.38) {
          what = `engine expunge ${uid}`;
          await box.transaction().expunge([{ uid1: uid, uid2: uid }]).commit();
        } else if (r < 0.5) {
          what = "dovecot save";
          await o.save("INBOX", sampleMessage(++n));
        } else if (r < 0.65) {
          const action = random() < 0.6 ? "add" : "remove";
          const flags = someFlags();
          what = `dovecot flags ${action} ${flags.join(" ")} uid ${uid}`;
          if (flags.length > 0) await o.flags(action, flags.join(" "), `mailbox INBOX uid ${uid}`);
        } else if (r < 0.72) {
          what = `dovecot expunge ${uid}`;
          await o.expunge(`mailbox INBOX uid ${uid}`);
        } else if (r < 0.88) {
          what = "client renames a file (toggles S)";
          const dir = pick(["cur", "new"].filter((d) => fs.readdirSync(path.join(o.root, d)).length > 0));
          const name = pick(fs.readdirSync(path.join(o.root, dir)));
          const [base, info = ""] = name.split(":");
          const letters = info.startsWith("2,") ? info.slice(2) : "";
          const next = letters.includes("S") ? letters.replace("S", "") : [...letters, "S"].sort().join("");
          fs.renameSync(path.join(o.root, dir, name), path.join(o.root, dir, `${base}:2,${next}`));
        } else if (r < 0.95) {
          what = "MDA drops a file into new/";
          fs.writeFileSync(path.join(o.root, "new", `${1700000000 + step}.M${step}P7.mda`), sampleMessage(++n));
        } else {
          what = "client deletes a file";
          const dir = pick(["cur", "new"].filter((d) => fs.readdirSync(path.join(o.root, d)).length > 0));
          fs.rmSync(path.join(o.root, dir, pick(fs.readdirSync(path.join(o.root, dir)))));
        }
        log.push(what);
        // Alternate who syncs first: the engine, or Dovecot (whose fetch syncs).
        let theirs;
        if (step % 2 === 0) {
          await box.refresh();
          theirs = await dovecotView(o);
        } else {
          theirs = await dovecotView(o);
          await box.refresh();
        }
        expect(engineView(box), `seed ${seed}, step ${step}: ${log.join("; ")}`).toEqual(theirs);
      }
      for (const m of engineView(box)) {
        const [row] = await o.fetch("guid", ["mailbox", "INBOX", "uid", String(m.uid)]);
        expect((await box.backend.messageInfo(box.state, m.uid)).guid).toBe(row.guid);
        expect(Buffer.from(await box.readMessage(m.uid)).equals(await o.fetchText("INBOX", m.uid))).toBe(true);
      }
      o.assertNoStderrProblems();
    } finally {
      await box.close();
      await storage.close();
      await o.cleanup();
    }
  }, 120_000);
});
