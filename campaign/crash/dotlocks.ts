import * as fs from "node:fs";
import * as path from "node:path";

/**
 * A kill while dovecot-uidlist.lock (or dovecot-keywords.lock) is held leaves
 * it behind. Dovecot's own locks of these files hold the new content, not a
 * pid, so neither Dovecot nor the engine can tell a dead holder from a live
 * one: both wait for the lock to be 2 minutes old and then break it. The
 * campaign (and test/interop/files-crash.test.ts) moves its mtime back
 * instead of waiting.
 * @returns how many it aged (anywhere under `root`).
 */
export function ageLeftoverDotlocks(root: string): number {
  const old = new Date(Date.now() - 200_000);
  let n = 0;
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.startsWith("dovecot-") && e.name.endsWith(".lock")) {
        fs.utimesSync(p, old, old);
        n++;
      }
    }
  };
  walk(root);
  return n;
}
