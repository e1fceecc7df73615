/**
 * Run as root on a store another user owns, the CLI does what doveadm does
 * (it drops to the mail user before touching mail): it switches its
 * groups, gid and uid to the owner of the store's root — or, for a root not
 * created yet, of the nearest directory above it — before anything is
 * opened, so every file it creates is that user's and Dovecot, running as
 * that user, can use it. A root-owned place (e.g. under /tmp or /var/mail
 * as root made it) leaves the process as it is. Only the CLI process does
 * this: the library never changes the identity of the process it runs in
 * (embedded as root, it gives each file it creates the owner of its
 * directory instead: src/shared/file-mode.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** Who the process became. */
export interface SwitchedUser {
  readonly uid: number;
  readonly gid: number;
}

/**
 * @param rootOf the store's root, asked only when the process is root (it
 *   resolves the location, which may probe the file system).
 * @returns the user switched to, or undefined when the process is not root
 *   or the place belongs to root.
 */
export function actAsStoreOwner(rootOf: () => string): SwitchedUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const root = rootOf();
  if (root === "") return undefined;
  const st = nearestExisting(path.resolve(root));
  if (st === undefined || st.uid === 0) return undefined;
  // Groups first, then gid, then uid: after setuid nothing else may be changed.
  process.setgroups?.([st.gid]);
  process.setgid?.(st.gid);
  process.setuid?.(st.uid);
  return { uid: st.uid, gid: st.gid };
}

function nearestExisting(p: string): fs.Stats | undefined {
  for (let d = p; ; d = path.dirname(d)) {
    try {
      return fs.statSync(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    if (path.dirname(d) === d) return undefined;
  }
}
