/**
 * `mkdir -p` without Node's `fs.mkdirSync(dir, { recursive: true })`, which
 * on Node 20 loops forever at 100% CPU under /proc (e.g. a mail location
 * mistyped as /proc/…): here the existing ancestor is found by stat() and
 * each missing level created on its own, so any failure is thrown once.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** Creates `dir` and its missing parents; an existing directory is fine. */
export function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); ; ) {
    try {
      fs.statSync(d);
      break; // exists (a file here makes the mkdir below fail with ENOTDIR)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    missing.push(d);
    const parent = path.dirname(d);
    if (parent === d) break;
    d = parent;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (err) {
      // Another process may create the same directory meanwhile.
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
}
