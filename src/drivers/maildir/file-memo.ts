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
  /** The names as read (dot files skipped). */
  readonly names: readonly string[];
  readonly stamp: FileStamp;
  readonly checkTime: number;
  /**
   * The names by base name, made at the first lookup: a read-only check
   * that walks the names once (unindexed.ts) needs none.
   */
  byBase?: BaseIndex;
}

interface BaseIndex {
  /** base name → full name (strings only: no object per file of a 100k listing) */
  readonly files: Map<string, string>;
  /** Names whose base name an earlier name of the same directory has, or that have none. */
  readonly dups: string[];
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
    const n = this.dirs.new!;
    const c = this.dirs.cur!;
    return { newStamp: n.stamp, newCheckTime: n.checkTime, curStamp: c.stamp, curCheckTime: c.checkTime, readNew, readCur };
  }

  /** Files seen twice (the second copy), or without a base name, as of the last scan(). */
  strays(): MaildirFile[] {
    const strays: MaildirFile[] = [];
    const n = this.index("new");
    const c = this.index("cur");
    // A base in both directories: Dovecot keeps the one in new/ (read first).
    for (const base of n.files.keys()) {
      const name = c.files.get(base);
      if (name !== undefined) strays.push({ dir: "cur", name });
    }
    for (const [dir, d] of [["new", n], ["cur", c]] as const) for (const name of d.dups) strays.push({ dir, name });
    return strays;
  }

  /**
   * Calls `visit` with each file's name, new/ first, as last scanned (and
   * changed by put() and the rest since), until it returns false.
   * @returns false when `visit` stopped the walk.
   */
  everyName(visit: (name: string) => boolean): boolean {
    for (const sub of ["new", "cur"] as const) {
      const d = this.dirs[sub];
      if (d === undefined) continue;
      if (d.byBase === undefined) {
        for (const name of d.names) if (!visit(name)) return false;
      } else {
        for (const name of d.byBase.files.values()) if (!visit(name)) return false;
        for (const name of d.byBase.dups) if (!visit(name)) return false;
      }
    }
    return true;
  }

  private refresh(sub: MaildirSubdir): boolean {
    const old = this.dirs[sub];
    if (old && sameStamp(old.stamp, statDirStamp(path.join(this.mailDir, sub))) && old.checkTime > old.stamp.mtime + MAILDIR_SYNC_SECS) return false;
    this.dirs[sub] = listMaildirSubdir(this.mailDir, sub);
    return true;
  }

  /** `sub`'s names by base name (an empty index when it was never read). */
  private index(sub: MaildirSubdir): BaseIndex {
    const d = this.dirs[sub];
    if (d === undefined) return { files: new Map(), dups: [] };
    if (d.byBase !== undefined) return d.byBase;
    const files = new Map<string, string>();
    const dups: string[] = [];
    for (const name of d.names) {
      // ":…" has no base name: a stray for the caller to rename, as Dovecot does.
      if (name.charCodeAt(0) === 58) {
        dups.push(name);
        continue;
      }
      const base = maildirBaseName(name);
      if (files.has(base)) dups.push(name);
      else files.set(base, name);
    }
    return (d.byBase = { files, dups });
  }

  /** @returns where the file with base name `base` was seen, if anywhere. */
  find(base: string): MaildirFile | undefined {
    const fresh = this.index("new").files.get(base);
    if (fresh !== undefined) return { dir: "new", name: fresh };
    const name = this.index("cur").files.get(base);
    return name === undefined ? undefined : { dir: "cur", name };
  }

  /** Every file by base name (new/ wins over cur/ for a base in both). */
  *entries(): IterableIterator<[string, MaildirFile]> {
    const n = this.index("new").files;
    for (const [base, name] of n) yield [base, { dir: "new", name }];
    for (const [base, name] of this.index("cur").files) if (!n.has(base)) yield [base, { dir: "cur", name }];
  }

  /** Records a file we created or renamed. */
  put(base: string, file: MaildirFile): void {
    const other = file.dir === "new" ? "cur" : "new";
    if (this.dirs[other]) this.index(other).files.delete(base);
    if (this.dirs[file.dir]) this.index(file.dir).files.set(base, file.name);
  }

  /** Number of distinct base names. */
  count(): number {
    const n = this.index("new").files;
    const c = this.index("cur").files;
    let both = 0;
    for (const base of n.keys()) if (c.has(base)) both++;
    return n.size + c.size - both;
  }

  /** Forgets one listed name (a stray we renamed away), leaving the base's other file. */
  dropName(file: MaildirFile): void {
    if (!this.dirs[file.dir]) return;
    const d = this.index(file.dir);
    const base = maildirBaseName(file.name);
    if (d.files.get(base) === file.name) d.files.delete(base);
    const i = d.dups.indexOf(file.name);
    if (i >= 0) (d.dups as string[]).splice(i, 1);
  }

  /** Records a file we removed (or found missing). */
  remove(base: string): void {
    if (this.dirs.new) this.index("new").files.delete(base);
    if (this.dirs.cur) this.index("cur").files.delete(base);
  }

  /** Forgets everything: the next scan reads both directories. */
  reset(): void {
    this.dirs = {};
  }
}

function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.mtime === b.mtime && a.mtimeNsecs === b.mtimeNsecs;
}
