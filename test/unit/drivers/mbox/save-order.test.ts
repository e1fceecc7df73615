import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { WriteHold } from "../../../../src/drivers/mbox/mbox-file.js";
import { saveToMbox } from "../../../../src/drivers/mbox/save.js";
import { parseMbox } from "../../../../src/drivers/mbox/scan.js";
import { openStorage } from "../../../../src/index.js";

class Killed extends Error {}

/** A hold over a plain descriptor whose writes stop ("the process is killed") after the one carrying `marker`. */
function holdKilledAfter(fd: number, file: string, marker: string): WriteHold {
  let markerWritten = false;
  return {
    file: { path: file } as WriteHold["file"],
    fd,
    recovered: false,
    write(data, at, truncateTo) {
      if (markerWritten) throw new Killed();
      const parts = data instanceof Uint8Array ? [data] : data;
      let pos = at;
      for (const p of parts) pos += fs.writeSync(fd, p, 0, p.length, pos);
      if (truncateTo !== undefined) fs.ftruncateSync(fd, truncateTo);
      markerWritten = parts.some((p) => Buffer.from(p).includes(marker));
    },
    settle() {},
    touch() {},
    syncData() {},
    end: () => Promise.resolve(),
  };
}

describe("mbox save: the order of its writes", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mbox-save-order-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("writes the messages last: killed right after them, the file still lists their new keyword in X-IMAPbase", async () => {
    const inbox = path.join(dir, "inbox");
    const storage = openStorage(`mbox:${dir}:INBOX=${inbox}`);
    const box = await storage.openMailbox("INBOX");
    await box.refresh();
    await box.transaction().append({ body: "From: a@b\nSubject: first\n\nOne\n", flags: [] }).commit();
    const state = box.state;
    await box.close();
    await storage.close();

    const marker = "Subject: second-with-keyword";
    const fd = fs.openSync(inbox, "r+");
    try {
      const hold = holdKilledAfter(fd, inbox, marker);
      const saving = saveToMbox(hold, state, [{ body: Buffer.from(`From: a@b\n${marker}\n\nTwo\n`), flags: 0, keywords: ["$Work"] }], [state.header.nextUid]);
      // Either the save needed no write after the message (the new order) or it was killed there.
      await saving.catch((err: unknown) => {
        if (!(err instanceof Killed)) throw err;
      });
    } finally {
      fs.closeSync(fd);
    }
    const parsed = parseMbox(fs.readFileSync(inbox));
    expect(parsed.messages).toHaveLength(2);
    expect(parsed.imapBase?.keywords).toContain("$Work");
    // As Dovecot reads the file without an index: the keyword is kept.
    expect(parsed.messages[1].keywords).toEqual(["$Work"]);
  });
});
