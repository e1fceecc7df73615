/**
 * The import's memory bound when the target writes slowly (issue #11, goal
 * 5a): the source is read only as fast as the target takes the data, so
 * what was read and not yet written (bytes in flight) stays under one stage
 * (STAGE_BYTES) plus a message, however slow the writes are. The target's
 * writes are made slow by holding every stage add() back for a number of
 * event-loop turns, where a reader running ahead of them would read on.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { importMailboxes, openStorage, searchUids, type Storage } from "../../../src/index.js";
import { Mailbox } from "../../../src/api/mailbox.js";
import { STAGE_BYTES } from "../../../src/convert/import-batch.js";
import { MdboxSaveStage } from "../../../src/drivers/mdbox/save-stage.js";
import type { NewMessage } from "../../../src/drivers/driver.js";

const MESSAGES = 300;
const BODY_BYTES = 20_000;
/** Event-loop turns each stage add() is held back: far more than a reader needs to read on. */
const SLOW_TURNS = 50;

let dir: string;
let source: Storage;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstore-import-backpressure-"));
  source = openStorage(`sdbox:${dir}/src`);
  const box = await source.openMailbox("INBOX");
  const tx = box.transaction();
  for (let i = 1; i <= MESSAGES; i++) tx.append({ body: `Subject: m${i}\n\n`.padEnd(BODY_BYTES, `line ${i} `) + "\n" });
  await tx.commit();
  await box.close();
});

afterEach(async () => {
  vi.restoreAllMocks();
  await source.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

it("reads the source no further ahead of slow target writes than one stage and a message", async () => {
  let read = 0;
  let written = 0;
  let mostInFlight = 0;
  const fetch = Mailbox.prototype.fetch;
  vi.spyOn(Mailbox.prototype, "fetch").mockImplementation(function (this: Mailbox, ...args: Parameters<Mailbox["fetch"]>) {
    const inner = fetch.apply(this, args);
    return (async function* () {
      for await (const m of inner) {
        if ("body" in m && m.body instanceof Uint8Array) read += m.body.length;
        mostInFlight = Math.max(mostInFlight, read - written);
        yield m;
      }
    })() as ReturnType<Mailbox["fetch"]>;
  });
  const add = MdboxSaveStage.prototype.add;
  vi.spyOn(MdboxSaveStage.prototype, "add").mockImplementation(async function (this: MdboxSaveStage, messages: readonly NewMessage[]) {
    for (let turn = 0; turn < SLOW_TURNS; turn++) await new Promise((r) => setImmediate(r));
    await add.call(this, messages);
    for (const m of messages) written += m.body.length;
  });
  const target = openStorage(`mdbox:${dir}/dst`);
  try {
    await importMailboxes(source, target);
    const box = await target.openMailbox("INBOX");
    expect(searchUids(box.state, [{ type: "all" }]).length).toBe(MESSAGES);
  } finally {
    await target.close();
  }
  expect(written, "every body went through the slowed stage").toBe(read);
  expect(read).toBeGreaterThan(10 * STAGE_BYTES);
  expect(mostInFlight, `most bytes read and not yet written, of ${read}`).toBeLessThanOrEqual(STAGE_BYTES + BODY_BYTES + 100);
});
