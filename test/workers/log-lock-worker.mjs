// A second process on a log file, for the log layer's lock tests: it takes
// (or, to play a writer whose lock was lost, does not take) the same fcntl
// lock as Dovecot and the engine, and writes raw bytes at the end of the file.
// Usage: node log-lock-worker.mjs PATH MODE [HEX [SPLIT]]
//   append         lock (waiting), write HEX at EOF, unlock
//   locked-torn    lock, write HEX[0:SPLIT] at EOF, print "ready", wait for a
//                  line on stdin, write the rest, unlock, print "done"
//   unlocked-torn  the same without the lock
//   probe          print "locked" when another process holds the lock, else "free"
import * as fs from "node:fs";
import { lock, unlock } from "os-lock";

const [path, mode, hex = "", split = "0"] = process.argv.slice(2);
const bytes = Buffer.from(hex, "hex");
const fd = fs.openSync(path, "r+");

async function tryLock() {
  try {
    await lock(fd, 0, 0, { exclusive: true, immediate: true });
    return true;
  } catch (err) {
    if (err.code === "EAGAIN" || err.code === "EACCES") return false;
    throw err;
  }
}

async function lockWaiting() {
  // Polling, not F_SETLKW: the test process may hold the lock for a while.
  while (!(await tryLock())) await new Promise((r) => setTimeout(r, 2));
}

const nextLine = () => new Promise((resolve) => process.stdin.once("data", resolve));

if (mode === "probe") {
  process.stdout.write((await tryLock()) ? "free\n" : "locked\n");
} else if (mode === "append") {
  await lockWaiting();
  fs.writeSync(fd, bytes, 0, bytes.length, fs.fstatSync(fd).size);
  await unlock(fd, 0, 0);
  process.stdout.write("done\n");
} else if (mode === "locked-torn" || mode === "unlocked-torn") {
  if (mode === "locked-torn") await lockWaiting();
  const at = fs.fstatSync(fd).size;
  const cut = Number(split);
  fs.writeSync(fd, bytes, 0, cut, at);
  process.stdout.write("ready\n");
  await nextLine();
  fs.writeSync(fd, bytes, cut, bytes.length - cut, at + cut);
  if (mode === "locked-torn") await unlock(fd, 0, 0);
  process.stdout.write("done\n");
  process.stdin.destroy();
} else {
  throw new Error(`unknown mode ${mode}`);
}
fs.closeSync(fd);
