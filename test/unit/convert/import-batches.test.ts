/**
 * Imports commit in batches: they land in order with the source's UIDs,
 * progress counts only committed messages, and a commit that fails ends the
 * import with its error, leaving exactly the batches before it. (Reading
 * the next batch while one commits was tried and measured slower: the
 * commit's fdatasyncs block the event loop anyway, and the lock scope's
 * promise hooks stayed on during the reads.)
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { importMailboxes, openStorage, searchUids, type Storage } from "../../../src/index.js";

let dir: string;
let source: Storage;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-import-pipeline-"));
  source = openStorage(`sdbox:${dir}/src`);
  const box = await source.openMailbox("INBOX");
  const tx = box.transaction();
  for (let i = 1; i <= 12; i++) tx.append({ body: `Subject: m${i}\n\nbody ${i}\n`, flags: i % 2 === 0 ? ["\\Seen"] : [] });
  await tx.commit();
  await box.close();
});

afterEach(async () => {
  await source.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

it("lands every batch in order, with the source's UIDs, flags and bodies", async () => {
  const target = openStorage(`mdbox:${dir}/dst`);
  try {
    const done: number[] = [];
    await importMailboxes(source, target, { batchMessages: 5, onProgress: (p) => done.push(p.messagesDone) });
    expect(done.at(-1)).toBe(12);
    expect(done).toEqual([...done].sort((a, b) => a - b));
    const box = await target.openMailbox("INBOX");
    expect(searchUids(box.state, [{ type: "all" }])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const bodies: string[] = [];
    for await (const m of box.fetch([1, 6, 12], ["body", "flags"])) bodies.push(`${Buffer.from(m.body).toString()}|${m.flags.join(" ")}`);
    expect(bodies).toEqual(["Subject: m1\n\nbody 1\n|", "Subject: m6\n\nbody 6\n|\\Seen", "Subject: m12\n\nbody 12\n|\\Seen"]);
  } finally {
    await target.close();
  }
});

it("a target that holds bodies until its commit (sdbox) commits when they reach batchBytes", async () => {
  const target = openStorage(`sdbox:${dir}/dst`);
  try {
    const done: number[] = [];
    // Each body is about 20 bytes: three of them reach 50.
    await importMailboxes(source, target, { batchBytes: 50, onProgress: (p) => done.push(p.messagesDone) });
    expect(done).toEqual([0, 3, 6, 9, 12]);
    const box = await target.openMailbox("INBOX");
    expect(searchUids(box.state, [{ type: "all" }])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  } finally {
    await target.close();
  }
});

it("a failing commit ends the import with its error; the batches before it stay, progress counted only them", async () => {
  const refusal = new Error("second batch refused");
  const target = openStorage(`mdbox:${dir}/dst`, {
    commitHooks: {
      // The second batch commits onto the first one's 5 messages (counting commits instead missed the
      // UIDVALIDITY update that comes first when source and target were created in different seconds).
      beforeCommit: async (_box, state) => {
        if (state.records.count === 5) throw refusal;
      },
    },
  });
  try {
    const done: number[] = [];
    await expect(importMailboxes(source, target, { batchMessages: 5, onProgress: (p) => done.push(p.messagesDone) })).rejects.toBe(refusal);
    expect(Math.max(...done)).toBe(5);
    const box = await target.openMailbox("INBOX");
    expect(searchUids(box.state, [{ type: "all" }])).toEqual([1, 2, 3, 4, 5]);
  } finally {
    await target.close();
  }
});

it("stages big messages into the target's files as they come; a refused commit takes its staged data back", async () => {
  const big = (i: number) => `Subject: big ${i}\n\n`.padEnd(120_000, `line ${i} `) + "\n";
  const from = openStorage(`sdbox:${dir}/big`);
  const box = await from.openMailbox("INBOX");
  const tx = box.transaction();
  for (let i = 1; i <= 8; i++) tx.append({ body: big(i) });
  await tx.commit();
  await box.close();
  const target = openStorage(`mdbox:${dir}/dst`, { commitHooks: { beforeCommit: async (_box, state) => { if (state.records.count === 4) throw new Error("refused"); } } });
  try {
    await expect(importMailboxes(from, target, { batchMessages: 4 })).rejects.toThrow("refused");
    const storageDir = path.join(dir, "dst", "storage");
    // Four messages of 120 kB staged past the write buffer, then taken back: only the first batch's file is left.
    expect(fs.readdirSync(storageDir).filter((f) => !f.startsWith("dovecot.map.index"))).toEqual(["m.1"]);
    const dst = await target.openMailbox("INBOX");
    const bodies: string[] = [];
    for await (const m of dst.fetch(searchUids(await dst.refresh(), [{ type: "all" }]), ["body"])) bodies.push(Buffer.from(m.body).toString());
    expect(bodies).toEqual([1, 2, 3, 4].map(big));
    expect(fs.statSync(path.join(storageDir, "m.1")).size).toBeLessThan(5 * 120_000);
  } finally {
    await target.close();
    await from.close();
  }
});
