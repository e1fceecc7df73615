// A `local`-mode primary that, once told to ("go" on stdin), creates, commits to, renames and deletes
// mailboxes, printing "ok STEP" after each call returned, then "done", and runs until killed.
// Usage: node tree-worker.mjs '{"servers":[…],"location":…,"storageId":…,"outboxDir":…,"timeoutMs":…}'
import { openStorage } from "../../dist/src/index.js";
import { Outbox, Publisher, ReplicationConnection } from "../../dist/src/replication/index.js";

const opts = JSON.parse(process.argv[2]);
const conn = await ReplicationConnection.open({ servers: opts.servers, timeoutMs: opts.timeoutMs ?? 1000 });
const outbox = new Outbox(new Publisher(conn, opts.storageId), opts.outboxDir);
const storage = openStorage(opts.location, { commitHooks: outbox.hooks, mailboxTreeHooks: outbox.treeHooks });
await outbox.attach(storage);
process.stdout.write("ready\n");
await new Promise((resolve) => process.stdin.once("data", resolve));

async function withMailbox(name, fn) {
  const box = await storage.openMailbox(name);
  try {
    await fn(box);
  } finally {
    await box.close();
  }
}
const save = (name, n) => withMailbox(name, (box) => box.transaction().append({ body: `Subject: m${n}\n\nmessage ${n}\n` }).commit());

const steps = [
  ["create A", () => storage.createMailbox("A")],
  ["save A 1", () => save("A", 1)],
  ["save A 2", () => save("A", 2)],
  ["rename A B", () => storage.renameMailbox("A", "B")],
  ["save B 3", () => save("B", 3)],
  ["create C", () => storage.createMailbox("C")],
  ["update C", () => withMailbox("C", (box) => box.update({ minNextUid: 30 }))],
  ["create X", () => storage.createMailbox("X")],
  ["save X 4", () => save("X", 4)],
  ["delete X", () => storage.deleteMailbox("X")],
  ["rename B D", () => storage.renameMailbox("B", "D")],
  ["create Empty", () => storage.createMailbox("Empty")],
];
for (const [what, step] of steps) {
  await step();
  process.stdout.write(`ok ${what}\n`);
}
process.stdout.write("done\n");
setInterval(() => undefined, 60_000);
