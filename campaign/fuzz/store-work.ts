import { createHash } from "node:crypto";
import { flagNames, messageCount, openStorage, recordAt } from "../../src/index.js";

/** The mailbox the fuzz sample breaks a file of (or a shared file of) and works on. */
export const WORKED_MAILBOX = "INBOX";
/** The mailbox that must come out untouched. */
export const BYSTANDER_MAILBOX = "Other";

/**
 * What a server does with a mailbox: open, refresh, read every message,
 * change flags on all, append one. Run in the fuzz subprocess.
 */
export async function workOnMailbox(location: string, mailbox: string): Promise<void> {
  const storage = openStorage(location, { lockTimeoutMs: 2000 });
  try {
    const box = await storage.openMailbox(mailbox);
    const state = await box.refresh();
    for (let seq = 1; seq <= messageCount(state); seq++) await box.readMessage(recordAt(state, seq)!.uid);
    await box.transaction().flags([{ uid1: 1, uid2: 0xffffffff }], "add", ["$Fuzz"]).commit();
    await box.transaction().append({ body: "From: fuzz@test\nSubject: fuzz\n\nbody\n" }).commit();
  } finally {
    await storage.close();
  }
}

/** A mailbox's contents as one comparable string: uid, flags and a hash of the bytes of every message. */
export async function mailboxFingerprint(location: string, mailbox: string): Promise<string> {
  const storage = openStorage(location, { lockTimeoutMs: 2000 });
  try {
    const box = await storage.openMailbox(mailbox);
    const state = await box.refresh();
    const lines: string[] = [];
    for (let seq = 1; seq <= messageCount(state); seq++) {
      const r = recordAt(state, seq)!;
      const hash = createHash("sha1").update(await box.readMessage(r.uid)).digest("hex");
      lines.push(`${r.uid} ${[...flagNames(r.flags & 0x1f), ...r.keywords].sort().join(",")} ${hash}`);
    }
    return lines.join("\n");
  } finally {
    await storage.close();
  }
}
