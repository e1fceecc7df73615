/**
 * Watching the mail files of formats where other programs change mail
 * without a log (Maildir's new/ and cur/, an mbox file), so that a change
 * stream learns of an MDA's delivery or a client's rename as Dovecot's IDLE
 * does: inotify, then a sync, which logs what changed as EXTERNAL
 * transactions. No polling: one fs.watch per path, events coalesced.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** Events closer together than this make one sync. */
const COALESCE_MS = 25;

/**
 * fs.watch errors that mean "this directory cannot be watched": it is not
 * there (yet), or the inotify limits (max_user_watches: ENOSPC,
 * max_user_instances: EMFILE) are reached.
 */
const UNWATCHABLE: ReadonlySet<string> = new Set(["ENOENT", "ENOTDIR", "ENOSPC", "EMFILE"]);

/**
 * Calls `onChange` (at most once per COALESCE_MS, never concurrently with
 * itself; it must handle its own errors: a rejection is not swallowed here,
 * it surfaces as an unhandled rejection) after anything
 * changes in `paths`: directories are watched
 * directly; for a file, its directory is watched and events for other names
 * are ignored, so a file replaced by rename is still followed.
 * @returns a function that stops every watch.
 * @throws fs errors other than a path not there yet or one that cannot be
 *   watched (UNWATCHABLE); no watch is left running then.
 */
export function watchMailFiles(paths: readonly string[], onChange: () => Promise<void>): () => void {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  const run = () => {
    timer = undefined;
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = onChange().finally(() => {
      running = undefined;
      if (again && !stopped) {
        again = false;
        schedule();
      }
    });
  };
  const schedule = () => {
    timer ??= setTimeout(run, COALESCE_MS);
  };
  const watchers: fs.FSWatcher[] = [];
  try {
    for (const p of paths) {
      const w = watchPath(p, schedule);
      if (w !== undefined) watchers.push(w);
    }
  } catch (err) {
    for (const w of watchers) w.close();
    throw err;
  }
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}

/**
 * Watches `p` (a directory), or the directory that holds or will hold it
 * (a file), calling `schedule` on changes to it.
 * @returns the watcher, or undefined when that directory cannot be watched.
 */
function watchPath(p: string, schedule: () => void): fs.FSWatcher | undefined {
  let dir = p;
  let only: string | undefined;
  try {
    if (!fs.statSync(p).isDirectory()) {
      dir = path.dirname(p);
      only = path.basename(p);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    // Not there yet (an mbox before its first message): watch where it will appear.
    dir = path.dirname(p);
    only = path.basename(p);
  }
  try {
    const w = fs.watch(dir, { persistent: false }, (_event, name) => {
      if (only === undefined || name === null || name === only) schedule();
    });
    w.on("error", () => w.close());
    return w;
  } catch (err) {
    if (!UNWATCHABLE.has((err as NodeJS.ErrnoException).code ?? "")) throw err;
    // A path that cannot be watched leaves changes to the next explicit refresh.
    return undefined;
  }
}
