/**
 * Where mdbox keeps things (dbox.md §1): `<root>/storage/m.<file_id>` and the
 * map index beside them, or with INDEX= in `<index>/storage/` (checked with
 * doveadm 2.3.19); with ALT, the same relative path under the ALT root. File
 * ids are global: `m.7` is either in the primary storage or in ALT, never
 * both, and readers try primary first. The mailbox tree is dbox's
 * (layout.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { listDboxFiles, mdboxFileName } from "../dbox/files.js";
import { makeDirs } from "../../shared/make-dirs.js";
import { assert } from "../../shared/errors.js";
import { DboxLayout } from "../dbox/layout.js";

/** MDBOX_GLOBAL_DIR_NAME */
export const STORAGE_DIR_NAME = "storage";
/** MDBOX_GLOBAL_INDEX_PREFIX: prefix of the map index files. */
export const MAP_INDEX_PREFIX = "dovecot.map.index";

/** A located m.N file. */
export interface LocatedFile {
  readonly fileId: number;
  readonly path: string;
  readonly alt: boolean;
}

/** The paths of one mdbox storage (primary, optional ALT and INDEX): its mailbox tree and its storage. */
export class MdboxPaths extends DboxLayout {
  /** `<root>/storage`. */
  readonly storageDir: string;
  /** `<alt>/storage`, when ALT is configured. */
  readonly altStorageDir: string | undefined;
  /** `<root>/storage/dovecot.map.index` (with INDEX=, under `<index>/storage`): the map's index prefix. */
  readonly mapPrefix: string;

  /** @throws MailstoreError UNSUPPORTED for `INDEX=MEMORY` (layout.ts). */
  constructor(root: string, altRoot?: string, indexRoot?: string) {
    super(root, { alt: altRoot, index: indexRoot });
    this.storageDir = path.join(root, STORAGE_DIR_NAME);
    this.altStorageDir = altRoot === undefined ? undefined : path.join(altRoot, STORAGE_DIR_NAME);
    this.mapPrefix = path.join(this.indexRootDir, STORAGE_DIR_NAME, MAP_INDEX_PREFIX);
  }

  /** The last primary path made: a fetch asks once per message, mostly for the file of the message before. */
  private lastPrimary = { fileId: 0, path: "" };

  /** @returns the path `m.<fileId>` has in primary storage, or in ALT when `alt`. */
  filePath(fileId: number, alt = false): string {
    assert(!alt || this.altStorageDir !== undefined, "no ALT storage configured");
    if (!alt && fileId === this.lastPrimary.fileId) return this.lastPrimary.path;
    // Both directories are normalised already (path.join above).
    const made = `${alt ? this.altStorageDir! : this.storageDir}${path.sep}${mdboxFileName(fileId)}`;
    if (!alt) this.lastPrimary = { fileId, path: made };
    return made;
  }

  /** @returns the file's location (primary first, then ALT, as Dovecot looks), or undefined when it exists in neither. */
  locate(fileId: number): LocatedFile | undefined {
    for (const alt of this.altStorageDir === undefined ? [false] : [false, true]) {
      const p = this.filePath(fileId, alt);
      if (fs.existsSync(p)) return { fileId, path: p, alt };
    }
    return undefined;
  }

  /**
   * Where to read m.N from: without ALT its one possible path, unchecked
   * (the open finds out, and a fetch of 20,000 messages saves as many
   * stat()s); with ALT, the one that exists (locate).
   */
  readPath(fileId: number): string | undefined {
    return this.altStorageDir === undefined ? this.filePath(fileId, false) : this.locate(fileId)?.path;
  }

  /** Every m.N in primary storage and ALT, by file id (primary listed first for an id in both). */
  async listFiles(): Promise<LocatedFile[]> {
    const out: LocatedFile[] = [];
    for (const [dir, alt] of [[this.storageDir, false], [this.altStorageDir, true]] as const) {
      if (dir === undefined || !fs.existsSync(dir)) continue;
      for (const e of await listDboxFiles(dir, "mdbox")) out.push({ fileId: e.id, path: path.join(dir, e.name), alt });
    }
    return out.sort((a, b) => a.fileId - b.fileId || Number(a.alt) - Number(b.alt));
  }

  /** Creates the storage directory and the map's (and ALT's storage when `alt`). */
  ensureDirs(alt = false): void {
    makeDirs(this.storageDir);
    if (this.indexRoot !== undefined) this.makeIndexDirs(path.dirname(this.mapPrefix));
    if (alt && this.altStorageDir !== undefined) makeDirs(this.altStorageDir);
  }
}
