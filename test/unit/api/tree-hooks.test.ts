/**
 * MailboxTreeHooks around Storage.createMailbox: `afterMailboxChange` gets a
 * `create` change with the new mailbox's name, GUID and UIDVALIDITY, and the
 * new mailbox open; `beforeMailboxChange` is not run for a create; a hook
 * that throws fails the call and the mailbox stays. Without hooks nothing
 * changes. Every format.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStorage, type Mailbox, type MailboxTreeChange, type MailboxTreeHooks } from "../../../src/index.js";

const FORMATS = ["sdbox", "mdbox", "maildir", "mbox"] as const;

function locationOf(format: (typeof FORMATS)[number], dir: string): string {
  return format === "mbox" ? `mbox:${dir}/mail:INBOX=${dir}/inbox` : `${format}:${dir}/mail`;
}

class HookFailure extends Error {}

describe.each(FORMATS)("%s: MailboxTreeHooks on create", (format) => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "tree-hooks-"));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("afterMailboxChange sees the created mailbox, open; rename and delete still get no mailbox", async () => {
    const seen: Array<{ change: MailboxTreeChange; uidValidity?: number; guid?: string; open: boolean; phase: string }> = [];
    const hooks: MailboxTreeHooks = {
      beforeMailboxChange: async (change) => {
        seen.push({ change, open: false, phase: "before" });
      },
      afterMailboxChange: async (change, mailbox?: Mailbox) => {
        seen.push({ change, uidValidity: mailbox?.uidValidity, guid: mailbox?.guid(), open: mailbox !== undefined, phase: "after" });
      },
    };
    const storage = openStorage(locationOf(format, dir), { mailboxTreeHooks: hooks });
    await storage.createMailbox("Box", { uidValidity: 4242 });
    expect(seen).toHaveLength(1);
    const [created] = seen;
    expect(created.phase).toBe("after");
    expect(created.open).toBe(true);
    expect(created.change).toEqual({ type: "create", mailbox: { name: "Box", guid: created.guid, uidValidity: 4242 } });
    expect(created.uidValidity).toBe(4242);
    const box = await storage.openMailbox("Box");
    expect(box.guid()).toBe(created.guid);
    await box.close();

    seen.length = 0;
    await storage.renameMailbox("Box", "Renamed");
    expect(seen.map((s) => [s.phase, s.change.type, s.open])).toEqual([["before", "rename", false], ["after", "rename", false]]);
    await storage.close();
  });

  it("a create hook that throws fails the call; the mailbox stays", async () => {
    const storage = openStorage(locationOf(format, dir), {
      mailboxTreeHooks: {
        afterMailboxChange: async (change) => {
          if (change.type === "create") throw new HookFailure("refused");
        },
      },
    });
    await expect(storage.createMailbox("Box")).rejects.toBeInstanceOf(HookFailure);
    expect(await storage.listMailboxes()).toContain("Box");
    await storage.close();
  });
});
