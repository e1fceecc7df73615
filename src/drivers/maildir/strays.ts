/**
 * Files Dovecot would not give a UID as they are: a second file with a base
 * name already seen (new/ is read first and wins), or a name with no base at
 * all (":2,S"). Like maildir_fix_duplicate() and
 * maildir_rename_empty_basename(), they are renamed to a fresh name in new/
 * (keeping `,S=`/`,W=`), after which the sync finds them as new mail. Hard
 * links of one file under two names are left alone.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { MaildirContext } from "./context.js";
import { maildirFilePath, type MaildirFile } from "./dir-scan.js";
import { maildirBaseName, maildirFileNameSize } from "./filename.js";
import { newMaildirBaseName } from "./unique-name.js";

/** Renames each stray file to a fresh name in new/ (see the module comment). */
export function renameStrays(ctx: MaildirContext, strays: readonly MaildirFile[]): void {
  for (const stray of strays) {
    const from = maildirFilePath(ctx.mailDir, stray);
    const base = maildirBaseName(stray.name);
    const keeper = base === "" ? undefined : ctx.files.find(base);
    if (keeper && keeper.dir === stray.dir && keeper.name === stray.name) continue;
    if (keeper) {
      try {
        const a = fs.statSync(from);
        const b = fs.statSync(maildirFilePath(ctx.mailDir, keeper));
        if (a.ino === b.ino && a.dev === b.dev) continue; // hard links of one file: leave them
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") continue; // gone already
        throw err;
      }
    }
    ctx.files.dropName(stray);
    let fresh = newMaildirBaseName();
    const size = maildirFileNameSize(stray.name, "S");
    const vsize = maildirFileNameSize(stray.name, "W");
    if (size !== undefined) fresh += `,S=${size}`;
    if (vsize !== undefined) fresh += `,W=${vsize}`;
    try {
      fs.renameSync(from, path.join(ctx.mailDir, "new", fresh));
      ctx.files.put(fresh, { dir: "new", name: fresh });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
}
