// The import through the library (importMailboxes) with every synchronous write slowed by DELAY_US
// (busy wait) and every fdatasync by SYNC_MS (a timer, or a busy wait for the synchronous one): does the
// source run ahead of slow writes? Prints the time, the writes and the highest RSS seen at a progress
// report; run under /usr/bin/time -v for the peak.
// usage: DELAY_US=2000 SYNC_MS=200 node bench/side-by-side/import-slow-writes.mjs <dist dir> <source location> <mdbox root>
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import * as path from "node:path";

const [dist, sourceLocation, targetRoot] = process.argv.slice(2);
const us = Number(process.env.DELAY_US ?? 0);
const syncMs = Number(process.env.SYNC_MS ?? 0);
const spin = (n) => {
  const end = process.hrtime.bigint() + BigInt(Math.round(n * 1000));
  while (process.hrtime.bigint() < end);
};
let writes = 0;
const writeSync = fs.writeSync;
fs.writeSync = function (...args) {
  writes++;
  if (us) spin(us);
  return writeSync.apply(this, args);
};
const fdatasync = fs.fdatasync;
fs.fdatasync = (fd, cb) => setTimeout(() => fdatasync(fd, cb), syncMs);
const fdatasyncSync = fs.fdatasyncSync;
fs.fdatasyncSync = (fd) => {
  spin(syncMs * 1000);
  return fdatasyncSync(fd);
};
// The library's `import * as fs from "node:fs"` sees the patched functions only after this.
syncBuiltinESMExports();
const { openStorage, importMailboxes } = await import(path.resolve(dist, "src/index.js"));
const source = openStorage(sourceLocation);
const target = openStorage(`mdbox:${targetRoot}`);
const t0 = Date.now();
let peak = 0;
const done = await importMailboxes(source, target, { onProgress: () => (peak = Math.max(peak, process.memoryUsage().rss)) });
console.log(`${done.reduce((n, m) => n + m.messages, 0)} messages in ${Date.now() - t0} ms, ${writes} writes, highest RSS at a progress report ${(peak / 2 ** 20).toFixed(1)} MiB`);
await source.close();
await target.close();
