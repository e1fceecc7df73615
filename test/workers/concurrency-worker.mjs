// One engine process of test/interop/concurrency.test.ts: random flag changes
// and saves on one mailbox, through the public API (dist/), while another
// engine process and doveadm do the same.
// Usage: node concurrency-worker.mjs LOCATION MAILBOX NAME SEED OPS MAXUID SYSFLAG
// Before an operation it may reopen the mailbox or refresh it, as a server
// does between commands.
// Protocol: prints "ready" once the mailbox is open; then each "tick N" line
// on stdin allows N more operations, run back to back; "end" lifts the limit. Every operation is retried on LOCK_TIMEOUT (a busy or lost lock:
// nothing was acknowledged) until it is acknowledged. The last stdout line is
// a JSON report: the acknowledged operations in order, or {error}.
import * as readline from "node:readline";
import { openStorage } from "../../dist/src/index.js";

const [location, mailbox, name, seedArg, opsArg, maxUidArg, sysFlag] = process.argv.slice(2);
const ops = Number(opsArg);
const maxUid = Number(maxUidArg);
const owned = [sysFlag, `$${name}0`, `$${name}1`, `$${name}2`];

/** mulberry32: small, seedable, the same sequence on every machine. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(Number(seedArg) ^ [...name].reduce((h, c) => Math.imul(h, 31) + c.charCodeAt(0), 7));
const pick = (n) => Math.floor(random() * n);

let credits = 0;
let unlimited = false;
let wake = () => undefined;
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.startsWith("tick ")) credits += Number(line.slice(5));
  else if (line === "end") unlimited = true;
  wake();
});
async function takeCredit() {
  while (!unlimited && credits === 0) await new Promise((resolve) => (wake = resolve));
  credits--;
}

const storage = openStorage(location, { lockTimeoutMs: 20_000 });
let box = await storage.openMailbox(mailbox);
process.stdout.write("ready\n");

const done = [];
let retries = 0;
const lockErrors = new Map();

/** Runs `fn` until it succeeds, again after each LOCK_TIMEOUT (counted: message → times). */
async function retried(fn) {
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (err?.code !== "LOCK_TIMEOUT") throw err;
      retries++;
      const key = String(err.message).replace(/offset \d+|size \d+|expected \d+|\d+ ms/g, "N");
      lockErrors.set(key, (lockErrors.get(key) ?? 0) + 1);
    }
  }
}
try {
  for (let i = 0; i < ops; i++) {
    await takeCredit();
    // What a server does between commands: reopen the mailbox now and then,
    // and refresh (which syncs Maildir/mbox files with the index under the lock).
    const before = pick(10);
    if (before === 0) {
      await box.close();
      box = await storage.openMailbox(mailbox);
    }
    if (before < 5) await retried(() => box.refresh());
    let op;
    if (pick(10) === 0) {
      op = { kind: "save", subject: `${name} save ${i}` };
    } else {
      const uid1 = 1 + pick(maxUid);
      const uid2 = pick(3) === 0 ? Math.min(maxUid, uid1 + pick(4)) : uid1;
      const names = owned.filter(() => pick(2) === 0);
      if (names.length === 0) names.push(owned[pick(owned.length)]);
      op = { kind: "flags", action: pick(2) === 0 ? "add" : "remove", names, uid1, uid2 };
    }
    await retried(async () => {
      const tx = box.transaction();
      if (op.kind === "save") {
        tx.append({ body: `From: ${name}@test\nSubject: ${op.subject}\n\nbody ${i}\n`, flags: [] });
      } else {
        tx.flags([{ uid1: op.uid1, uid2: op.uid2 }], op.action, op.names);
      }
      await tx.commit();
    });
    done.push(op);
  }
  await box.close();
  await storage.close();
  process.stdout.write(JSON.stringify({ name, done, retries, lockErrors: Object.fromEntries(lockErrors) }) + "\n");
} catch (err) {
  process.stdout.write(JSON.stringify({ name, done, retries, lockErrors: Object.fromEntries(lockErrors), error: String(err?.stack ?? err) }) + "\n");
  process.exitCode = 1;
}
process.stdin.destroy();
