import { openStorage } from "../../src/index.js";

/**
 * Child process of the cross-process latency benchmark: commits `count`
 * single-flag transactions, `gapMs` apart, printing the absolute time
 * (ms since the epoch, sub-ms) at which each commit() was called.
 * Usage: node committer.js LOCATION COUNT GAP_MS
 */
const [location, count, gapMs] = process.argv.slice(2);
const storage = openStorage(location, { fsync: "never" });
const box = await storage.openMailbox("INBOX");
for (let i = 0; i < Number(count); i++) {
  const called = performance.timeOrigin + performance.now();
  await box.transaction().flags([{ uid1: 1, uid2: 1 }], i % 2 ? "remove" : "add", ["\\Seen"]).commit();
  process.stdout.write(`${called}\n`);
  await new Promise((r) => setTimeout(r, Number(gapMs)));
}
await storage.close();
