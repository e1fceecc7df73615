/**
 * Mailbox.fetch with transientBodies: each body is right when it is handed
 * out, whatever the order of the uids (read-ahead, refills, messages larger
 * than the window), two fetches in turn on one mailbox do not overwrite each
 * other's bodies, bodies of an ordinary fetch are never overwritten, and an
 * mdbox fetch reads every message through one buffer.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { prng } from "../../../campaign/lib/rng.js";
import { openStorage, type Mailbox, type Storage } from "../../../src/index.js";

const SEED = Number(process.env.FETCH_TRANSIENT_SEED ?? Date.now() % 1_000_000);

/** Message i's body: its number repeated to `size` bytes, so that any mix-up shows. */
function body(i: number, size: number): string {
  const head = `Subject: message ${i}\n\n`;
  return head + `${i} `.repeat(Math.ceil(size / (String(i).length + 1))).slice(0, Math.max(0, size - head.length - 1)) + "\n";
}

describe.each(["mdbox", "sdbox"])("%s: fetch with transient bodies", (format) => {
  let dir: string;
  let storage: Storage;
  let box: Mailbox;
  const sizes: number[] = [];

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-fetch-transient-"));
    storage = openStorage(`${format}:${dir}/mail`, { fsync: "never" });
    box = await storage.openMailbox("INBOX");
    const random = prng(SEED);
    sizes.length = 0;
    const tx = box.transaction();
    for (let i = 1; i <= 300; i++) {
      // Mostly small, a few larger than the 256 KiB read-ahead window.
      const size = random() < 0.02 ? 300_000 + Math.floor(random() * 100_000) : 100 + Math.floor(random() * 8000);
      sizes.push(size);
      tx.append({ body: body(i, size) });
    }
    await tx.commit();
  });
  afterEach(async () => {
    await storage.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const expected = (uid: number) => body(uid, sizes[uid - 1]);

  it("mdbox reads every message but those larger than 256 KiB through one buffer of that size; sdbox, a file per message, reads them into memory of their own", async () => {
    const all = Array.from({ length: 300 }, (_, i) => i + 1);
    const buffers = new Map<ArrayBufferLike, number>();
    for await (const m of box.fetch(all, ["body"], { transientBodies: true })) buffers.set(m.body.buffer, (buffers.get(m.body.buffer) ?? 0) + 1);
    const large = sizes.filter((s) => s > 200 * 1024).length;
    if (format === "mdbox") {
      // The window, and one buffer of its own per large message (the window does not grow for them).
      expect(buffers.size, `seed ${SEED}`).toBe(1 + large);
      expect([...buffers.keys()].filter((b) => b.byteLength === 256 * 1024), `seed ${SEED}`).toHaveLength(1);
    }
    else expect(buffers.size, `seed ${SEED}`).toBeGreaterThan(1 + large);
  });
  const text = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1");

  it("every body is right when handed out, in order, reversed and shuffled", async () => {
    const random = prng(SEED + 1);
    const inOrder = Array.from({ length: 300 }, (_, i) => i + 1);
    const shuffled = [...inOrder].sort(() => random() - 0.5);
    for (const [name, uids] of [["in order", inOrder], ["reversed", [...inOrder].reverse()], ["shuffled", shuffled]] as const) {
      let n = 0;
      for await (const m of box.fetch(uids, ["body"], { transientBodies: true })) {
        expect(text(m.body), `${name}, uid ${m.uid}, seed ${SEED}`).toBe(expected(m.uid));
        n++;
      }
      expect(n).toBe(300);
    }
  });

  it("two transient fetches in turn on one mailbox each get their own bodies", async () => {
    const a = box.fetch(Array.from({ length: 300 }, (_, i) => i + 1), ["body"], { transientBodies: true });
    const b = box.fetch(Array.from({ length: 300 }, (_, i) => 300 - i), ["body"], { transientBodies: true });
    for (let i = 0; i < 300; i++) {
      const x = (await a.next()).value!;
      const y = (await b.next()).value!;
      expect(text(x.body), `a uid ${x.uid}, seed ${SEED}`).toBe(expected(x.uid));
      expect(text(y.body), `b uid ${y.uid}, seed ${SEED}`).toBe(expected(y.uid));
    }
  });

  it("bodies of an ordinary fetch stay as they were through a transient fetch of every message", async () => {
    const kept = new Map<number, Uint8Array>();
    for await (const m of box.fetch([1, 2, 3, 150, 299, 300], ["body"])) kept.set(m.uid, m.body);
    for await (const m of box.fetch(Array.from({ length: 300 }, (_, i) => i + 1), ["body"], { transientBodies: true })) void m;
    for (const [uid, bytes] of kept) expect(text(bytes), `uid ${uid}, seed ${SEED}`).toBe(expected(uid));
  });
});
