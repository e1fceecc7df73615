import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { WriteHold } from "../../../../src/drivers/mbox/mbox-file.js";
import { saveToMbox } from "../../../../src/drivers/mbox/save.js";
import { parseMbox } from "../../../../src/drivers/mbox/scan.js";
import { openStorage } from "../../../../src/index.js";

class Killed extends Error {}

/**
 * A hold over a plain descriptor whose writes stop ("the process is killed")
 * once `killedAfter` says so of a write done: every later write throws Killed.
 */
function killingHold(fd: number, file: string, killedAfter: (data: readonly Uint8Array[], writesDone: number) => boolean): WriteHold {
  let killed = false;
  let writesDone = 0;
  return {
    file: { path: file } as WriteHold["file"],
    fd,
    recovered: false,
    write(data, at, truncateTo) {
      if (killed) throw new Killed();
      const parts = data instanceof Uint8Array ? [data] : data;
      let pos = at;
      for (const p of parts) pos += fs.writeSync(fd, p, 0, p.length, pos);
      if (truncateTo !== undefined) fs.ftruncateSync(fd, truncateTo);
      killed = killedAfter(parts, ++writesDone);
    },
    settle() {},
    touch() {},
    syncData() {},
    end: () => Promise.resolve(),
  };
}

/** A hold killed right after the write carrying `marker`. */
function holdKilledAfter(fd: number, file: string, marker: string): WriteHold {
  return killingHold(fd, file, (parts) => parts.some((p) => Buffer.from(p).includes(marker)));
}

/** Runs `save`, which a Killed may end. */
async function survive(save: Promise<unknown>): Promise<void> {
  await save.catch((err: unknown) => {
    if (!(err instanceof Killed)) throw err;
  });
}

describe("mbox save: the order of its writes", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mbox-save-order-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** An mbox INBOX with one committed message ("Subject: first"), and its index state. */
  async function oneMessageMbox() {
    const inbox = path.join(dir, "inbox");
    const storage = openStorage(`mbox:${dir}:INBOX=${inbox}`);
    const box = await storage.openMailbox("INBOX");
    await box.refresh();
    await box.transaction().append({ body: "From: a@b\nSubject: first\n\nOne\n", flags: [] }).commit();
    const state = box.state;
    await box.close();
    await storage.close();
    return { inbox, state };
  }

  it("writes the messages last: killed right after them, the file still lists their new keyword in X-IMAPbase", async () => {
    const { inbox, state } = await oneMessageMbox();

    const marker = "Subject: second-with-keyword";
    const fd = fs.openSync(inbox, "r+");
    try {
      const hold = holdKilledAfter(fd, inbox, marker);
      const saving = saveToMbox(hold, state, [{ body: Buffer.from(`From: a@b\n${marker}\n\nTwo\n`), flags: 0, keywords: ["$Work"] }], [state.header.nextUid]);
      // Either the save needed no write after the message (the new order) or it was killed there.
      await survive(saving);
    } finally {
      fs.closeSync(fd);
    }
    const parsed = parseMbox(fs.readFileSync(inbox));
    expect(parsed.messages).toHaveLength(2);
    expect(parsed.imapBase?.keywords).toContain("$Work");
    // As Dovecot reads the file without an index: the keyword is kept.
    expect(parsed.messages[1].keywords).toEqual(["$Work"]);
  });

  it("a save that goes before a message the index does not know (an MDA's): killed after any of its writes, every message is there once and the new keyword is listed in X-IMAPbase", async () => {
    const { inbox, state } = await oneMessageMbox();
    // Delivered behind the index's back: the save must go before it (UIDs grow through the file).
    fs.appendFileSync(inbox, "From mda@example.com Mon Dec  7 04:00:00 2026\nFrom: mda@example.com\nSubject: delivered\n\nThree\n\n");
    const before = fs.readFileSync(inbox);

    const marker = "Subject: second-with-keyword";
    const save = (hold: WriteHold) => saveToMbox(hold, state, [{ body: Buffer.from(`From: a@b\n${marker}\n\nTwo\n`), flags: 0, keywords: ["$Work"] }], [state.header.nextUid]);
    let writes = 0;
    for (let killAfter = 1; ; killAfter++) {
      fs.writeFileSync(inbox, before);
      const fd = fs.openSync(inbox, "r+");
      let finished = false;
      try {
        let done = 0;
        const hold = killingHold(fd, inbox, (_parts, n) => ((done = n), n >= killAfter));
        await survive(save(hold).then(() => (finished = done < killAfter)));
        writes = Math.max(writes, done);
      } finally {
        fs.closeSync(fd);
      }
      const what = `killed after write ${killAfter}`;
      const parsed = parseMbox(fs.readFileSync(inbox));
      const subjects = parsed.messages.map((m) => fs.readFileSync(inbox).subarray(m.headerOffset, m.bodyOffset).toString("latin1").match(/^Subject: (.*)$/m)?.[1]);
      // The committed message and the delivered one, once each, in order; the new one at most once, before the delivered one.
      expect(subjects.filter((x) => x !== "second-with-keyword"), what).toEqual(["first", "delivered"]);
      const saved = subjects.indexOf("second-with-keyword");
      if (saved >= 0) {
        expect(subjects, what).toEqual(["first", "second-with-keyword", "delivered"]);
        // As Dovecot reads the file without an index: the keyword is kept.
        expect(parsed.imapBase?.keywords, what).toContain("$Work");
        expect(parsed.messages[saved].keywords, what).toEqual(["$Work"]);
        // And its UID is below X-IMAPbase's next one, as after a save at the end.
        expect(parsed.imapBase?.uidLast, what).toBe(state.header.nextUid);
      }
      if (finished) {
        expect(saved, "the whole save").toBe(1);
        break;
      }
    }
    // X-IMAPbase in place, then the rewrite from the new message on.
    expect(writes).toBeGreaterThanOrEqual(2);
  });
});
