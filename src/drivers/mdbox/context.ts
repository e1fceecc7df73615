import type { FsyncMode } from "../../log/log.js";
import { encodeMutf7 } from "../mutf7.js";
import type { MdboxMap } from "./map.js";
import type { MdboxPaths } from "./paths.js";

/** Tunables of an mdbox storage, named after Dovecot's settings. */
export interface MdboxSettings {
  /** mdbox_rotate_size: bytes after which an m.N file takes no more mail (default 10 MiB). */
  rotateSizeBytes?: number;
  /** fdatasync m.N data before the map records it (default true; mail_fsync=never: false). */
  fsyncFiles?: boolean;
  fsync?: FsyncMode;
}

/** What every mailbox of one mdbox storage shares: its paths, its one map, its settings. */
export interface MdboxContext {
  readonly paths: MdboxPaths;
  readonly map: MdboxMap;
  readonly settings: MdboxSettings;
}

/**
 * The name metadata `B` records (observed: doveadm writes the mailbox's
 * storage name, i.e. modified UTF-7 per level, `Gr&APwA3w-e` for "Grüße").
 */
export function storageNameOf(mailbox: string): string {
  return mailbox.split("/").map(encodeMutf7).join("/");
}
