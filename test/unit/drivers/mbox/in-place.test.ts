import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rewriteInPlace, type InPlacePlan, type Unit } from "../../../../src/drivers/mbox/in-place.js";
import { openMboxFile, releaseMboxFile } from "../../../../src/drivers/mbox/mbox-file.js";
import { bytesPiece, messagePiece, padTo, minPaddedSize, verbatimPiece, type Piece } from "../../../../src/drivers/mbox/pieces.js";
import { parseMbox, type MboxMessage } from "../../../../src/drivers/mbox/scan.js";
import { bufferSource, FileSource } from "../../../../src/drivers/mbox/source.js";
import { mboxMessageText } from "../../../../src/drivers/mbox/text.js";
import { formatMboxMessage } from "../../../../src/drivers/mbox/write.js";

/** A message of the generated file: Dovecot's layout, or raw as an MDA appends it. */
interface Gen {
  id: number;
  body: string;
  raw: boolean;
  keywords: string[];
}

function messageText(g: Gen): string {
  return `From: g${g.id}@test\nMessage-ID: <${g.id}@gen>\nSubject: ${g.id}\n\n${g.body}`;
}

function unitBytes(g: Gen, uid: number, first: boolean): Buffer {
  if (g.raw) return Buffer.from(`From mda@x  Mon Nov 23 10:00:00 2026\n${messageText(g)}\n`);
  return formatMboxMessage({
    message: messageText(g),
    uid,
    keywords: g.keywords,
    sender: "gen@x",
    receivedTime: 1_780_000_000,
    utcOffsetMinutes: 0,
    ...(first ? { imapBase: { uidValidity: 7, uidLast: 1000, keywords: ["k1", "k2", "k3", "long-keyword-number-1", "long-keyword-number-2"] } } : {}),
  });
}

/** Every message of the file, by Message-ID, with the text a client sees. */
function snapshot(data: Buffer): Array<[number, string]> {
  const src = bufferSource(data);
  return parseMbox(data).messages.map((m) => {
    const text = Buffer.from(mboxMessageText(src, m)).toString("latin1");
    const id = /^Message-ID: <(\d+)@gen>$/m.exec(text);
    return [id ? Number(id[1]) : -1, text];
  });
}

const genMessage = (id: number) =>
  fc.record({
    body: fc.array(fc.constantFrom("line\n", "From the start\n", ">From quoted\n", "x".repeat(300) + "\n", "\n"), { maxLength: 12 }).map((l) => l.join("") + "end\n"),
    raw: fc.boolean(),
    keywords: fc.subarray(["k1", "k2", "k3"]),
  }).map((r) => ({ ...r, id }));

describe("pieces: padding in hidden headers", () => {
  it("pads to any size from the minimum up, long paddings as blank continuation lines, text unchanged", () => {
    const g: Gen = { id: 1, body: "hello\n", raw: false, keywords: ["k1"] };
    const unit = unitBytes(g, 1, false);
    const min = minPaddedSize(unit);
    expect(padTo(unit, min - 1)).toBeUndefined();
    for (const size of [min, min + 1, unit.length, min + 999, min + 1001, min + 1002, min + 5000]) {
      const out = padTo(unit, size)!;
      expect(out.length).toBe(size);
      const parsed = parseMbox(out);
      expect(parsed.messages.map((m) => [m.rawUid, m.rawKeywords])).toEqual([[1, ["k1"]]]);
      expect(Buffer.from(mboxMessageText(bufferSource(out), parsed.messages[0])).toString()).toBe(messageText(g));
    }
  });
});

describe("rewriteInPlace", () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "in-place-"));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("keeps the file whole messages after every write: each kept one once, nothing torn", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 9 }).chain((n) =>
          fc.tuple(
            fc.tuple(...Array.from({ length: n }, (_, i) => genMessage(i + 1))),
            fc.array(fc.constantFrom("keep", "drop", "grow", "shrink"), { minLength: n, maxLength: n }),
            fc.array(fc.tuple(fc.integer({ min: 0, max: n }), genMessage(0)), { maxLength: 3 }),
            fc.integer({ min: 1, max: 3000 }),
          ),
        ),
        async ([gens, fates, inserts, windowBytes]) => {
          // Raw (MDA) messages only at the end, as an MDA appends them; the first is Dovecot's.
          const msgs: Gen[] = gens.map((g, i) => ({ ...g, raw: i > 0 && g.raw && gens.slice(i).every((x) => x.raw) }));
          const file = path.join(dir, `mbox-${run++}`);
          fs.writeFileSync(file, Buffer.concat(msgs.map((g, i) => unitBytes(g, i + 1, i === 0))));
          const before = snapshot(fs.readFileSync(file));
          const ins = inserts.map(([at, g], k) => ({ at, g: { ...g, id: 100 + k, raw: false } }));
          const mbox = openMboxFile(file, `${file}.redo`);
          const hold = await mbox.beginWrite({ timeoutMs: 100 });
          try {
            const src = new FileSource(hold.fd);
            const scanned = parseMbox(fs.readFileSync(file)).messages;
            const units = scanned.map((m, i) => ({ start: m.fromLineOffset, end: i + 1 < scanned.length ? scanned[i + 1].fromLineOffset : src.size }));
            const keep = new Map<number, string>();
            const maybe = new Map<number, string>();
            before.forEach(([id, text], i) => (fates[i] === "drop" ? maybe : keep).set(id, text));
            for (const { g } of ins) maybe.set(g.id, messageText(g));
            const check = () => {
              const now = snapshot(fs.readFileSync(file));
              const seen = new Map<number, number>();
              for (const [id, text] of now) {
                expect(keep.get(id) ?? maybe.get(id), `message ${id} is one of ours, whole`).toBe(text);
                seen.set(id, (seen.get(id) ?? 0) + 1);
              }
              for (const [id, count] of seen) expect(count, `message ${id} once`).toBe(1);
              for (const id of keep.keys()) expect(seen.has(id), `message ${id} kept`).toBe(true);
            };
            const first = fates.findIndex((f, i) => f !== "keep" || ins.some((x) => x.at === i));
            const plan: InPlacePlan = {
              units,
              firstChange: first < 0 ? (ins.length > 0 ? scanned.length : scanned.length) : first,
              windowBytes,
              afterWrite: check,
              pieceFor: (i, unit): Piece | undefined => {
                const fate = fates[i];
                if (fate === "drop") return undefined;
                const kws = fate === "grow" ? ["long-keyword-number-1", "long-keyword-number-2", "k1", "k2", "k3"] : fate === "shrink" ? [] : msgs[i].keywords;
                // As sync plans them: a message without Dovecot's headers can still carry padding (they get written).
                return messagePiece(unit, scanned[i], { uid: i + 1, flags: 0, keywords: kws, recent: true, bodyLength: scanned[i].endOffset - scanned[i].bodyOffset }, fate !== "keep");
              },
              insertsBefore: (i) => ins.filter((x) => x.at === i).map((x) => bytesPiece(unitBytes(x.g, 200 + x.g.id, false), 200 + x.g.id)),
            };
            rewriteInPlace(hold, plan);
            check();
            // The end: exactly the kept and inserted messages, in order.
            const expected: number[] = [];
            for (let i = 0; i <= msgs.length; i++) {
              expected.push(...ins.filter((x) => x.at === i).map((x) => x.g.id));
              if (i < msgs.length && fates[i] !== "drop") expected.push(msgs[i].id);
            }
            expect(snapshot(fs.readFileSync(file)).map(([id]) => id)).toEqual(expected);
          } finally {
            await hold.end();
            releaseMboxFile(mbox);
            fs.rmSync(file, { force: true });
          }
        },
      ),
      { numRuns: Number(process.env.IN_PLACE_RUNS ?? 300) },
    );
  });

  /** Writes `msgs` to `file`, then rewrites it with the plan `planOf` makes of its scanned messages. */
  async function rewriteGenerated(name: string, msgs: Gen[], planOf: (scanned: readonly MboxMessage[], units: Unit[]) => InPlacePlan): Promise<readonly MboxMessage[]> {
    const file = path.join(dir, name);
    fs.writeFileSync(file, Buffer.concat(msgs.map((g, i) => unitBytes(g, i + 1, i === 0))));
    const mbox = openMboxFile(file, `${file}.redo`);
    const hold = await mbox.beginWrite({ timeoutMs: 100 });
    try {
      const size = new FileSource(hold.fd).size;
      const scanned = parseMbox(fs.readFileSync(file)).messages;
      rewriteInPlace(hold, planOf(scanned, scanned.map((m, i) => ({ start: m.fromLineOffset, end: i + 1 < scanned.length ? scanned[i + 1].fromLineOffset : size }))));
    } finally {
      await hold.end();
      releaseMboxFile(mbox);
    }
    return parseMbox(fs.readFileSync(file)).messages;
  }

  /** `p`, counting the reads of its least size. */
  const countingMinSize = (p: Piece, onRead: () => void): Piece => ({
    uid: p.uid,
    preferred: p.preferred,
    get minSize() {
      onRead();
      return p.minSize;
    },
    sizeOk: (size) => p.sizeOk(size),
    render: (size) => p.render(size),
  });

  it("a file that grows at every message is planned in linear work: each piece's minimum size asked a bounded number of times", async () => {
    // Every message gains Dovecot's headers and a keyword, so the file only fits at its end: fit()
    // was asked at every message about all of them (20,000 messages given an X-UID took ~30 s).
    const count = 1500;
    const msgs: Gen[] = Array.from({ length: count }, (_, i) => ({ id: i + 1, body: `body ${i}\n`, raw: true, keywords: [] }));
    let minSizeReads = 0;
    const after = await rewriteGenerated("grow-all", msgs, (scanned, units) => ({
      units,
      firstChange: 0,
      windowBytes: 1,
      pieceFor: (i, unit) =>
        countingMinSize(
          messagePiece(unit, scanned[i], { uid: i + 1, flags: 0, keywords: ["long-keyword-number-1"], recent: true, bodyLength: scanned[i].endOffset - scanned[i].bodyOffset }, true),
          () => minSizeReads++,
        ),
      insertsBefore: () => [],
    }));
    expect(after.map((m) => m.rawKeywords)).toEqual(msgs.map(() => ["long-keyword-number-1"]));
    expect(minSizeReads, `${minSizeReads} reads of minSize for ${count} pieces`).toBeLessThanOrEqual(4 * count);
  });

  it("a rewrite that shrinks the file (an expunge) never asks a piece for its least size (which may regenerate its header)", async () => {
    const msgs: Gen[] = Array.from({ length: 300 }, (_, i) => ({ id: i + 1, body: `body ${i}\n`, raw: false, keywords: ["k1"] }));
    let minSizeReads = 0;
    const after = await rewriteGenerated("shrink-all", msgs, (scanned, units) => ({
      units,
      firstChange: 1,
      windowBytes: 1,
      // Every tenth message from the second on expunged.
      pieceFor: (i, unit) => (i % 10 === 1 ? undefined : countingMinSize(verbatimPiece(unit, scanned[i]), () => minSizeReads++)),
      insertsBefore: () => [],
    }));
    expect(after.length).toBe(270);
    expect(minSizeReads).toBe(0);
  });

  it("inserts before messages that must stay byte for byte (a save before an MDA's delivery)", async () => {
    const msgs: Gen[] = [1, 2, 3, 4].map((id) => ({ id, body: "b".repeat(50 * id) + "\n", raw: id > 2, keywords: [] }));
    const file = path.join(dir, "insert");
    fs.writeFileSync(file, Buffer.concat(msgs.map((g, i) => unitBytes(g, i + 1, i === 0))));
    const mbox = openMboxFile(file, `${file}.redo`);
    const hold = await mbox.beginWrite({ timeoutMs: 100 });
    try {
      const src = new FileSource(hold.fd);
      const scanned = parseMbox(fs.readFileSync(file)).messages;
      const units = scanned.map((m, i) => ({ start: m.fromLineOffset, end: i + 1 < scanned.length ? scanned[i + 1].fromLineOffset : src.size }));
      const added: Gen = { id: 9, body: "new\n", raw: false, keywords: ["k1"] };
      const checks: number[][] = [];
      const result = rewriteInPlace(hold, {
        units,
        firstChange: 2,
        windowBytes: 1,
        afterWrite: () => checks.push(snapshot(fs.readFileSync(file)).map(([id]) => id)),
        pieceFor: (i, unit) => verbatimPiece(unit, scanned[i]),
        insertsBefore: (i) => (i === 2 ? [bytesPiece(unitBytes(added, 3, false), 3)] : []),
      });
      expect(checks).toEqual([[1, 2, 9, 3, 4]]);
      expect(snapshot(fs.readFileSync(file)).map(([id, text]) => [id, text])).toEqual([...msgs.slice(0, 2), added, ...msgs.slice(2)].map((g) => [g.id, messageText(g)]));
      expect(result.offsets.get(3)).toBe(units[2].start - 1);
    } finally {
      await hold.end();
      releaseMboxFile(mbox);
    }
  });
});
