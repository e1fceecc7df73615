import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** What a killed worker left of its dotlocks. */
export interface LeftoverDotlocks {
  /** Lock files found (each names the dead worker: Dovecot and the engine break it at once). */
  readonly left: number;
  /**
   * Locks that name no dead process of this host. Dovecot 2.3 breaks such a
   * lock only after watching the locked file stand still for 2 minutes from
   * its own first look (the lock's mtime does not count: checked with
   * doveadm 2.3.19), so every doveadm command would wait that long.
   */
  readonly problems: string[];
}

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ESRCH") return true;
    if (code === "EPERM") return false;
    throw err;
  }
}

/**
 * Finds the dotlocks (`dovecot-uidlist.lock`, `dovecot-keywords.lock`,
 * `<mbox>.lock`, `subscriptions.lock`) under `root` after a kill, and checks
 * that each names a dead process of this host, as the engine's locks always
 * do (drivers/dotlock.ts). Nothing is aged or removed: the next commands must
 * cope with what the kill left, as they would in production.
 */
export function inspectLeftoverDotlocks(root: string): LeftoverDotlocks {
  let left = 0;
  const problems: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.endsWith(".lock") && !e.name.startsWith(".")) {
        left++;
        const content = fs.readFileSync(p, "latin1");
        const m = /^(\d+):(.*)$/.exec(content);
        if (!m || m[2] !== os.hostname() || !processGone(Number(m[1]))) {
          problems.push(`${path.relative(root, p)} left behind naming no dead process of this host (${JSON.stringify(content.slice(0, 40))}): doveadm would wait 2 minutes`);
        }
      }
    }
  };
  walk(root);
  return { left, problems };
}
