/**
 * The engine's side of the mbox benchmarks as a whole process (node startup
 * included, like doveadm's):
 *
 *     node dist/bench/mbox/engine-task.js expunge <location> <uid,uid,…>
 *     node dist/bench/mbox/engine-task.js import <source location> <target location>
 *     node dist/bench/mbox/engine-task.js index <location>        (builds the index: refresh)
 */
import { importMailboxes } from "../../src/convert/import.js";
import { openStorage } from "../../src/index.js";

const [task, a, b] = process.argv.slice(2);
if (task === "expunge") {
  const storage = openStorage(a);
  const box = await storage.openMailbox("INBOX");
  await box.refresh();
  await box.transaction().expunge(b.split(",").map((u) => ({ uid1: Number(u), uid2: Number(u) }))).commit();
  await storage.close();
} else if (task === "import") {
  const source = openStorage(a);
  const target = openStorage(b);
  await importMailboxes(source, target);
  await source.close();
  await target.close();
} else if (task === "index") {
  const storage = openStorage(a);
  const box = await storage.openMailbox("INBOX");
  await box.refresh();
  await storage.close();
} else {
  throw new Error(`unknown task ${task}`);
}
