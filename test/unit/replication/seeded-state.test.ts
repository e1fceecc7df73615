import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openStorage } from "../../../src/index.js";
import { messageCount, position, recordAt } from "../../../src/projections/read.js";
import type { IndexMapState } from "../../../src/projections/state.js";
import { SeedCollector } from "../../../src/replication/seeded-state.js";
import { WIRE_VERSION, type ShippedCommit } from "../../../src/replication/wire.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** What a change stream's fold reads of a state: position, modseq, UIDs, keywords, and every message's flags, keywords and modseq. */
function view(state: IndexMapState) {
  const messages = [];
  for (let seq = 1; seq <= messageCount(state); seq++) {
    const r = recordAt(state, seq)!;
    messages.push({ uid: r.uid, flags: r.flags, keywords: r.keywords, modseq: r.modseq });
  }
  const h = state.header;
  return { position: position(state), logModseq: state.logModseq, uidValidity: h.uidValidity, nextUid: h.nextUid, keywords: state.keywords, messages };
}

/** The seed publishSeed would ship of `state`, cut into parts of `per` messages (no modseq parts: the index keeps none). */
function seedOf(state: IndexMapState, per: number): ShippedCommit[] {
  const all = [];
  for (let seq = 1; seq <= messageCount(state); seq++) {
    const r = recordAt(state, seq)!;
    all.push({ uid: r.uid, flags: r.flags & 0x1f, keywords: r.keywords });
  }
  const parts: ShippedCommit[] = [];
  for (let i = 0; i * per < Math.max(all.length, 1); i++) {
    parts.push({
      version: WIRE_VERSION, storageId: "s", mailboxGuid: "g", writerGuid: "g", mailbox: "INBOX", uidValidity: state.header.uidValidity,
      start: position(state), end: position(state), modseq: state.logModseq, segments: [], bodies: [],
      seed: { part: i, last: (i + 1) * per >= all.length, nextUid: state.header.nextUid, keywords: [...state.keywords], tracksModseqs: false, messages: all.slice(i * per, (i + 1) * per), modseqs: [] },
    });
  }
  return parts;
}

describe("seeded state", () => {
  it("a seed's parts fold into the state they describe: flags, keywords in the primary's order, next UID past expunged messages, position and modseq", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "seeded-state-"));
    dirs.push(dir);
    const storage = openStorage(`sdbox:${dir}`);
    const box = await storage.openMailbox("INBOX");
    for (let i = 1; i <= 7; i++) await box.transaction().append({ body: `Subject: ${i}\n\n${i}\n`, flags: i % 3 === 0 ? ["\\Seen", "late"] : i % 3 === 1 ? ["early", "\\Draft"] : [] }).commit();
    await box.transaction().flags([{ uid1: 2, uid2: 5 }], "add", ["\\Flagged", "mid"]).commit();
    await box.transaction().flags([{ uid1: 1, uid2: 7 }], "remove", ["early"]).commit();
    await box.transaction().expunge([{ uid1: 6, uid2: 7 }]).commit();
    const state = box.state;
    await box.close();
    await storage.close();

    const collector = new SeedCollector();
    const parts = seedOf(state, 2);
    // A seed cut after its first part and published again whole: the collector starts over at part 0.
    expect(collector.add(parts[0])).toBeUndefined();
    let seeded: IndexMapState | undefined;
    for (const p of parts) seeded = collector.add(p) ?? seeded;
    const want = view(state);
    // The seed carries system flags without the format's BACKEND and DIRTY bits.
    want.messages = want.messages.map((m) => ({ ...m, flags: m.flags & 0x1f }));
    expect(view(seeded!)).toEqual(want);
  });
});
