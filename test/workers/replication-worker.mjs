// A primary that commits one message per transaction until killed, and
// journals each commit commit() acknowledged ("ok I") or refused ("err I CODE"),
// then prints the same line on stdout (the test's progress signal; the journal is the record).
// Usage: node replication-worker.mjs '{"servers":[…],"location":…,"storageId":…,"mode":"replicated"|"local","outboxDir":…,"journal":…}'
import * as fs from "node:fs";
import { openStorage } from "../../dist/src/index.js";
import { Outbox, Publisher, ReplicationConnection, replicatedCommitHooks } from "../../dist/src/replication/index.js";

const opts = JSON.parse(process.argv[2]);
const conn = await ReplicationConnection.open({ servers: opts.servers, timeoutMs: opts.timeoutMs ?? 5000 });
const publisher = new Publisher(conn, opts.storageId);
const outbox = opts.mode === "local" ? new Outbox(publisher, opts.outboxDir) : undefined;
const storage = openStorage(opts.location, { commitHooks: outbox ? outbox.hooks : replicatedCommitHooks(publisher) });
if (outbox) await outbox.attach(storage);
const inbox = await storage.openMailbox("INBOX");
const journal = fs.openSync(opts.journal, "a");
process.stdout.write("ready\n");
for (let i = opts.first ?? 1; ; i++) {
  try {
    await inbox.transaction().append({ body: `Subject: m${i}\n\nmessage ${i}\n` }).commit();
    fs.writeSync(journal, `ok ${i}\n`);
    process.stdout.write(`ok ${i}\n`);
  } catch (err) {
    fs.writeSync(journal, `err ${i} ${err.code ?? err.name}\n`);
    process.stdout.write(`err ${i} ${err.code ?? err.name}\n`);
    if (err.code === "REPLICATION_FENCED") break;
  }
}
