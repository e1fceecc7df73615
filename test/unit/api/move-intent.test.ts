/**
 * The move intent journal's slots (src/api/move-intent.ts) and the API's
 * moveTo: a record cut short is no intent; a slot a live mover holds is
 * neither finished nor reused; a dead mover's intent is finished by the next
 * open of the source (copies there: the originals go; none there: they stay).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openStorage, type Mailbox, type Storage } from "../../../src/index.js";
import {
  claimMoveIntentSlot,
  decodeMoveIntent,
  encodeMoveIntent,
  interruptedMoveSlots,
  MOVE_INTENT_PREFIX,
  type MoveIntent,
} from "../../../src/api/move-intent.js";

const FORMATS = ["sdbox", "mdbox", "maildir", "mbox"] as const;

const INTENT: MoveIntent = { target: "Archive", targetGuid: "ab".repeat(16), targetUidValidity: 7, targetNextUid: 3, sourceUids: [4, 9], targetGuids: ["g1", "g2"] };

describe("move intent records", () => {
  it("round-trips, and a record cut anywhere short is no intent", () => {
    const bytes = encodeMoveIntent(INTENT);
    expect(decodeMoveIntent(bytes)).toEqual(INTENT);
    for (let n = 0; n < bytes.length; n++) expect(decodeMoveIntent(bytes.subarray(0, n)), `cut at ${n}`).toBeUndefined();
    const flipped = Buffer.from(bytes);
    flipped[20] ^= 1;
    expect(decodeMoveIntent(flipped)).toBeUndefined();
  });
});

describe("move intent slots", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "move-slots-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("a live mover's slot is skipped by finishers and by other movers; a dead mover's intent is found", async () => {
    expect(await interruptedMoveSlots(dir, false)).toEqual([]);
    const live = await claimMoveIntentSlot(dir, false);
    live.write(INTENT);
    expect(await interruptedMoveSlots(dir, false)).toEqual([]);
    const second = await claimMoveIntentSlot(dir, false);
    expect(path.basename(second.path)).toBe(`${MOVE_INTENT_PREFIX}1`);
    second.close();
    live.close(); // the mover dies: its flock goes, its intent stays
    const third = await claimMoveIntentSlot(dir, false);
    expect(path.basename(third.path), "a dead mover's intent is not overwritten").toBe(`${MOVE_INTENT_PREFIX}1`);
    third.close();
    const found = await interruptedMoveSlots(dir, false);
    expect(found.map((f) => [path.basename(f.slot.path), f.intent])).toEqual([[`${MOVE_INTENT_PREFIX}0`, INTENT]]);
    found[0].slot.clear();
    found[0].slot.close();
    expect(await interruptedMoveSlots(dir, false)).toEqual([]);
  });
});

describe.each(FORMATS)("%s: moveTo and finishing a dead mover's move", (format) => {
  let dir: string;
  let storage: Storage;
  let inbox: Mailbox;
  let archive: Mailbox;
  const location = () => (format === "mbox" ? `mbox:${dir}/mail:INBOX=${dir}/inbox` : `${format}:${dir}/mail`);
  const subjects = async (box: Mailbox) => {
    const out: string[] = [];
    for await (const m of box.fetch((await box.refresh()).records.count > 0 ? allUids(box) : [], ["body"])) out.push(/Subject: (.*)/.exec(Buffer.from(m.body).toString())![1]);
    return out;
  };

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "move-api-"));
    storage = openStorage(location());
    await storage.createMailbox("Archive");
    inbox = await storage.openMailbox("INBOX");
    archive = await storage.openMailbox("Archive");
    const tx = inbox.transaction();
    for (const i of [1, 2, 3]) tx.append({ body: `Subject: m${i}\nMessage-ID: <${i}@move.test>\n\nbody ${i}\n`, flags: i === 2 ? ["\\Seen", "$Work"] : [] });
    await tx.commit();
  });
  afterEach(async () => {
    await storage.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("moves with flags and keywords, and leaves an empty slot", async () => {
    const result = await inbox.moveTo(archive, [{ uid1: 2, uid2: 3 }]);
    expect(result.sourceUids).toEqual([2, 3]);
    expect(result.appendedUids).toEqual([1, 2]);
    expect(await subjects(inbox)).toEqual(["m1"]);
    expect(await subjects(archive)).toEqual(["m2", "m3"]);
    const moved = [];
    for await (const m of archive.fetch([1], ["flags"])) moved.push(m.flags);
    expect(moved).toEqual([["\\Seen", "$Work"]]);
    expect(fs.statSync(path.join(path.dirname(inbox.indexPrefix), `${MOVE_INTENT_PREFIX}0`)).size).toBe(0);
    expect(await inbox.moveTo(archive, [{ uid1: 2, uid2: 3 }])).toMatchObject({ sourceUids: [], appendedUids: [] });
  });

  it("a moveTo whose expunge failed after the copy landed is finished by the retry, not copied again", async () => {
    await storage.close();
    let failExpunge = true;
    storage = openStorage(location(), {
      commitHooks: {
        beforeCommit: async (box) => {
          if (box.name === "INBOX" && failExpunge) throw new Error("expunge refused once");
        },
      },
    });
    inbox = await storage.openMailbox("INBOX");
    archive = await storage.openMailbox("Archive");
    await expect(inbox.moveTo(archive, [{ uid1: 2, uid2: 2 }])).rejects.toThrow("expunge refused once");
    expect(await subjects(archive)).toEqual(["m2"]);
    expect(await subjects(inbox)).toEqual(["m1", "m2", "m3"]);
    failExpunge = false;
    expect(await inbox.moveTo(archive, [{ uid1: 2, uid2: 2 }])).toMatchObject({ sourceUids: [], appendedUids: [] });
    expect(await subjects(archive)).toEqual(["m2"]);
    expect(await subjects(inbox)).toEqual(["m1", "m3"]);
  });

  it("a dead mover whose copy landed: the next open expunges the originals; one whose copy did not: they stay", async () => {
    const indexDir = path.dirname(inbox.indexPrefix);
    const intentFor = async (uid: number): Promise<MoveIntent> => {
      const state = await archive.refresh();
      const guid = (await inbox.backend.messageInfo(inbox.state, uid)).guid;
      const body = await inbox.readMessage(uid);
      return { target: "Archive", targetGuid: archive.guid(), targetUidValidity: state.header.uidValidity, targetNextUid: state.header.nextUid, sourceUids: [uid], targetGuids: [archive.backend.savedGuid?.(body, guid) ?? guid] };
    };
    // Move of uid 1: intent, copy, then death before the expunge.
    const landed = await claimMoveIntentSlot(indexDir, false);
    landed.write(await intentFor(1));
    await inbox.transaction().copyTo(archive, [{ uid1: 1, uid2: 1 }]);
    // Move of uid 3: intent, then death before the copy.
    const notLanded = await claimMoveIntentSlot(indexDir, false);
    notLanded.write(await intentFor(3));

    // While the movers live, an open finishes nothing.
    const other = openStorage(location());
    await other.openMailbox("INBOX");
    await other.close();
    expect(await subjects(inbox)).toEqual(["m1", "m2", "m3"]);

    landed.close();
    notLanded.close();
    const next = openStorage(location());
    await next.openMailbox("INBOX");
    await next.close();
    expect(await subjects(inbox)).toEqual(["m2", "m3"]);
    expect(await subjects(archive)).toEqual(["m1"]);
    expect(await interruptedMoveSlots(indexDir, false)).toEqual([]);
  });
});

function* allUids(box: Mailbox): Generator<number> {
  const records = box.state.records;
  for (let i = 0; i < records.count; i++) yield records.uidAt(i);
}
