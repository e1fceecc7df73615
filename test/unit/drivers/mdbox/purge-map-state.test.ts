/**
 * The map's state a purge leaves in memory (its transaction folded, or
 * left to fold when next read) must be the one the fold of the written log
 * gives, which is what every later open reads: after an expunge of a
 * prefix (the moved map uids one run) and after a scattered one.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { MdboxStorageBackend } from "../../../../src/drivers/mdbox/storage-backend.js";
import { loadState } from "../../../../src/index-io/load-state.js";
import { fingerprint, replayedLog as replayedLogIn } from "../../../helpers/state-fingerprint.js";
import type { IndexMapState } from "../../../../src/projections/state.js";
import { openStorage, type Storage } from "../../../../src/index.js";
import { prng } from "../../../../campaign/lib/rng.js";

let dir: string;
let storage: Storage;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "purge-map-state-"));
});
afterEach(async () => {
  await storage.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const replayedLog = (prefix: string): IndexMapState => replayedLogIn(prefix, dir);

const seeds = process.env.SEED ? [Number(process.env.SEED)] : [1, 2, 3, 4].map((n) => (Date.now() + n * 7919) >>> 0);
const cases = seeds.flatMap((seed) => [[seed, "prefix"], [seed, "scattered"]] as const);

it.each(cases)("the map's state after a purge is the fold of its log (seed %i, %s expunge)", async (seed, expunged) => {
  const rand = prng(seed);
  const root = path.join(dir, "mail");
  storage = openStorage(`mdbox:${root}`, { fsync: "never" });
  const backend = storage.backend as MdboxStorageBackend;
  backend.settings.rotateSizeBytes = 2048 + Math.floor(rand() * 8192);
  const box = await storage.openMailbox("INBOX");
  const count = 20 + Math.floor(rand() * 400);
  const tx = box.transaction();
  // Bodies of one size in the prefix case: a save puts a message that does not fit a file's
  // rest in the next file and may put a smaller next one back, which breaks the run of map uids.
  const bodySize = () => (expunged === "prefix" ? 120 : Math.floor(rand() * 300));
  for (let i = 0; i < count; i++) tx.append({ body: `Subject: ${i}\n\n${"x".repeat(bodySize())}\n` });
  await tx.commit();
  const expunge = box.transaction();
  if (expunged === "prefix") {
    // A prefix: the live rest of the last file purged is one run of map uids.
    expunge.expunge([{ uid1: 1, uid2: 1 + Math.floor(rand() * (count - 2)) }]);
  } else {
    for (let uid = 1; uid <= count; uid++) if (rand() < 0.3) expunge.expunge([{ uid1: uid, uid2: uid }]);
  }
  await expunge.commit();
  await box.close();
  const result = await backend.purge();
  expect(result.corruptFileIds).toEqual([]);
  const mapPrefix = path.join(root, "storage", "dovecot.map.index");
  expect(fingerprint(backend.map.state)).toEqual(fingerprint(replayedLog(mapPrefix)));
  if (fs.existsSync(mapPrefix)) expect(fingerprint(loadState(mapPrefix))).toEqual(fingerprint(replayedLog(mapPrefix)));
});
