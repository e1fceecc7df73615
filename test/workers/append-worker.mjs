// Appends `count` two-record transactions (flag update + a keyword unique to
// this worker and transaction) to a log shared with other processes.
// Usage: node append-worker.mjs PREFIX NAME COUNT MAXUID
import { TransactionLog } from "../../dist/src/log/log.js";

const [prefix, name, count, maxUid] = process.argv.slice(2);
const log = TransactionLog.open(prefix, { fsync: "never", lockTimeoutMs: 60_000 });
for (let i = 0; i < Number(count); i++) {
  const uid = 1 + (i % Number(maxUid));
  await log.append([
    { type: "flag-update", external: false, sync: false, updates: [{ uid1: uid, uid2: uid, addFlags: 0x02, removeFlags: 0, modseqIncFlag: 0 }] },
    { type: "keyword-update", external: false, sync: false, modifyType: "add", name: `${name}k${i}`, ranges: [{ uid1: uid, uid2: uid }] },
  ]);
}
await log.close();
