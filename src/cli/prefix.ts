import * as fs from "node:fs";
import * as path from "node:path";

/**
 * Turns what a user names (a mailbox index directory, `dovecot.index`, or one
 * of its `.log` files) into the index prefix the log layer works with.
 */
export function indexPrefixOf(target: string): string {
  if (fs.existsSync(target) && fs.statSync(target).isDirectory()) {
    for (const name of ["dovecot.index", "dovecot.map.index", "dovecot.list.index"]) {
      const candidate = path.join(target, name);
      if (fs.existsSync(candidate + ".log") || fs.existsSync(candidate)) return candidate;
    }
    return path.join(target, "dovecot.index");
  }
  return target.replace(/\.log(\.2)?$/, "");
}
