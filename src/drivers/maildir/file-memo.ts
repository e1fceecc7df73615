/**
 * What this process last saw in new/ and cur/: each file by base name, and
 * the directory's mtime when it was read. It answers "where is the file of
 * base B" without a readdir, and lets a sync re-read only a directory whose
 * mtime moved (a delivery to new/ does not cost a read of a 100k-file cur/).
 *
 * Our own renames, saves and unlinks are recorded in the maps but leave the
 * read stamps alone: the directory's mtime then no longer matches, so the
 * next scan reads it again and also sees what others did meanwhile.
 */
import { maildirBaseName } from "./filename.js";
import { listMaildirSubdir, statDirStamp, type MaildirFile, type MaildirSubdir } from "./dir-scan.js";
import { MAILDIR_SYNC_SECS, type FileStamp } from "./index-header.js";
import * as path from "node:path";

interface DirState {
  /** base name → full name (strings only: no object per file of a 100k listing) */
  readonly files: Map<string, string>;
  /** Names whose base name an earlier name of the same directory has, or that have none. */
  readonly dups: readonly string[];
  readonly stamp: FileStamp;
  readonly checkTime: number;
}

/** The result of a scan: what was read or reused, and the stamps the index header records. */
export interface ScanResult {
  readonly newStamp: FileStamp;
  readonly newCheckTime: number;
  readonly curStamp: FileStamp;
  readonly curCheckTime: number;
  /** Which directories were actually read now. */
  readonly readNew: boolean;
  readonly readCur: boolean;
  /** Files seen twice (the second copy), or without a base name. */
  readonly strays: MaildirFile[];
}

export class MaildirFileMemo {
  private dirs: { new?: DirState; cur?: DirState } = {};

  constructor(private readonly mailDir: string) {}

  /** True when both directories have been read at least once. */
  get complete(): boolean {
    return this.dirs.new !== undefined && this.dirs.cur !== undefined;
  }

  /**
   * Brings the memo up to date: new/ then cur/ is read again when it was
   * never read, when its mtime moved since, or when it was read within a
   * second of its last change (a later change in the same clock tick would
   * not have moved the mtime).
   */
  scan(): ScanResult {
    const readNew = this.refresh("new");
    const readCur = this.refresh("cur");
    const strays: MaildirFile[] = [];
    const n = this.dirs.new!;
    const c = this.dirs.cur!;
    // A base in both directories: Dovecot keeps the one in new/ (read first).
    for (const base of n.files.keys()) {
      const name = c.files.get(base);
      if (name !== undefined) strays.push({ dir: "cur", name });
    }
    for (const [dir, d] of [["new", n], ["cur", c]] as const) for (const name of d.dups) strays.push({ dir, name });
    return { newStamp: n.stamp, newCheckTime: n.checkTime, curStamp: c.stamp, curCheckTime: c.checkTime, readNew, readCur, strays };
  }

  private refresh(sub: MaildirSubdir): boolean {
    const old = this.dirs[sub];
    if (old && sameStamp(old.stamp, statDirStamp(path.join(this.mailDir, sub))) && old.checkTime > old.stamp.mtime + MAILDIR_SYNC_SECS) return false;
    const listing = listMaildirSubdir(this.mailDir, sub);
    const files = new Map<string, string>();
    const dups: string[] = [];
    for (const name of listing.names) {
      // ":…" has no base name: a stray for the caller to rename, as Dovecot does.
      if (name.charCodeAt(0) === 58) {
        dups.push(name);
        continue;
      }
      const base = maildirBaseName(name);
      if (files.has(base)) dups.push(name);
      else files.set(base, name);
    }
    this.dirs[sub] = { files, dups, stamp: listing.stamp, checkTime: listing.checkTime };
    return true;
  }

  /** @returns where the file with base name `base` was seen, if anywhere. */
  find(base: string): MaildirFile | undefined {
    const fresh = this.dirs.new?.files.get(base);
    if (fresh !== undefined) return { dir: "new", name: fresh };
    const name = this.dirs.cur?.files.get(base);
    return name === undefined ? undefined : { dir: "cur", name };
  }

  /** Every file by base name (new/ wins over cur/ for a base in both). */
  *entries(): IterableIterator<[string, MaildirFile]> {
    const n = this.dirs.new?.files ?? new Map<string, string>();
    for (const [base, name] of n) yield [base, { dir: "new", name }];
    for (const [base, name] of this.dirs.cur?.files ?? []) if (!n.has(base)) yield [base, { dir: "cur", name }];
  }

  /** Records a file we created or renamed. */
  put(base: string, file: MaildirFile): void {
    const other = file.dir === "new" ? "cur" : "new";
    this.dirs[other]?.files.delete(base);
    this.dirs[file.dir]?.files.set(base, file.name);
  }

  /** Number of distinct base names. */
  count(): number {
    const n = this.dirs.new?.files ?? new Map<string, string>();
    const c = this.dirs.cur?.files ?? new Map<string, string>();
    let both = 0;
    for (const base of n.keys()) if (c.has(base)) both++;
    return n.size + c.size - both;
  }

  /** Forgets one listed name (a stray we renamed away), leaving the base's other file. */
  dropName(file: MaildirFile): void {
    const d = this.dirs[file.dir];
    if (!d) return;
    const base = maildirBaseName(file.name);
    if (d.files.get(base) === file.name) d.files.delete(base);
    const i = d.dups.indexOf(file.name);
    if (i >= 0) (d.dups as string[]).splice(i, 1);
  }

  /** Records a file we removed (or found missing). */
  remove(base: string): void {
    this.dirs.new?.files.delete(base);
    this.dirs.cur?.files.delete(base);
  }

  /** Forgets everything: the next scan reads both directories. */
  reset(): void {
    this.dirs = {};
  }
}

function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.mtime === b.mtime && a.mtimeNsecs === b.mtimeNsecs;
}
