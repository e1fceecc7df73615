/**
 * Choosing the mail format when the location does not name one, as Dovecot
 * 2.3.19 does (observed with `doveadm -D`):
 *
 * - **mail_location empty**: look in the home directory, in this order:
 *   `~/sdbox` (with `mailboxes/`), `~/mdbox` (with `storage/`), `~/Maildir`
 *   (with `cur/`) — each directory must be rwx-accessible —, then for
 *   `~/mail` and `~/Mail`: an rwx-accessible `.imap/` directory, or an
 *   `inbox` or `mbox` file with rw access, makes it an mbox root.
 * - **a bare path**: `<path>/mailboxes/` → sdbox, `<path>/storage/` → mdbox,
 *   `<path>/cur/` → Maildir (existence is enough); a directory with
 *   `.imap/`, `inbox` or `mbox` (with the access above) → mbox root; a *file* is an mbox INBOX whose root is then looked up in the
 *   home as above (no root found: "Ambiguous mail location setting").
 * - **mbox without `INBOX=`**: `/var/mail/<user>`, then
 *   `/var/spool/mail/<user>` if readable and writable, else `<root>/inbox`.
 *
 * One deliberate difference: Dovecot tests `mailboxes/` (sdbox) before
 * `storage/` (mdbox), so a bare mdbox root (which has both) opens as sdbox —
 * doveadm then rebuilds an empty sdbox index over it. We test `storage/` first.
 *
 * File system access is injected ({@link FsProbe}) so the rules stay pure;
 * {@link nodeFsProbe} is the real one.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { InvalidArgumentError, MailstoreError } from "../shared/errors.js";
import { expandLocationHome, parseMailLocation } from "./location.js";
import type { MailDriver, MailLocation } from "./location.js";

/** What a path is, as far as autodetection cares. */
export type PathKind = "dir" | "file" | "other";

export interface FsProbe {
  /** @returns the kind of `p` (following symlinks), or undefined when it does not exist. */
  kind(p: string): PathKind | undefined;
  /** @returns true when the user may access `p` so: access(2) with R_OK|W_OK (`rw`) or R_OK|W_OK|X_OK (`rwx`). */
  access(p: string, mode: "rw" | "rwx"): boolean;
}

/**
 * stat(2)/access(2) errors that answer the probe's question with "no": the
 * path is not there (ENOENT, ENOTDIR, ELOOP), or not for this user
 * (EACCES, EPERM; EROFS and ETXTBSY for write access). Dovecot's autodetect
 * likewise takes a failed stat() or access() as "not this format". Anything
 * else (EIO, ENOMEM, EMFILE, …) is thrown.
 */
const PROBE_NO: ReadonlySet<string> = new Set(["ENOENT", "ENOTDIR", "ELOOP", "EACCES", "EPERM", "EROFS", "ETXTBSY"]);

function isProbeNo(err: unknown): boolean {
  return PROBE_NO.has((err as NodeJS.ErrnoException).code ?? "");
}

/** An FsProbe over node:fs. */
export const nodeFsProbe: FsProbe = {
  kind(p) {
    try {
      const st = fs.statSync(p);
      return st.isDirectory() ? "dir" : st.isFile() ? "file" : "other";
    } catch (err) {
      if (isProbeNo(err)) return undefined;
      throw err;
    }
  },
  access(p, mode) {
    const { R_OK, W_OK, X_OK } = fs.constants;
    try {
      fs.accessSync(p, mode === "rw" ? R_OK | W_OK : R_OK | W_OK | X_OK);
      return true;
    } catch (err) {
      if (isProbeNo(err)) return false;
      throw err;
    }
  },
};

export interface ResolveOptions {
  /** The user's home (needed for `~` and for autodetection without a path). */
  readonly home?: string;
  /** User name, for the mbox INBOX in /var/mail/<user>. */
  readonly user?: string;
  /**
   * Environment; `MAIL` is used when mail_location is empty, in the same
   * syntax (Dovecot 1.x imap read it; doveadm 2.3.19 ignores it — checked).
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly probe?: FsProbe;
}

/** A location with a driver, and for mbox an INBOX path. */
export interface ResolvedMailLocation extends MailLocation {
  readonly driver: MailDriver;
  /** True when the driver was autodetected. */
  readonly autodetected: boolean;
}

const MBOX_HOME_DIRS = ["mail", "Mail"];

function isDir(probe: FsProbe, p: string): boolean {
  return probe.kind(p) === "dir";
}

/** @returns the format of a bare path, by Dovecot's marker files (mdbox first, see above). */
export function detectFormatAt(root: string, probe: FsProbe = nodeFsProbe): "sdbox" | "mdbox" | "maildir" | "mbox" | undefined {
  if (isDir(probe, path.join(root, "storage"))) return "mdbox";
  if (isDir(probe, path.join(root, "mailboxes"))) return "sdbox";
  if (isDir(probe, path.join(root, "cur"))) return "maildir";
  if (isMboxRoot(root, probe)) return "mbox";
  return undefined;
}

/** An mbox root has an `.imap/` the user may use (rwx), or an `inbox` or `mbox` file it may read and write. */
function isMboxRoot(dir: string, probe: FsProbe): boolean {
  if (!isDir(probe, dir)) return false;
  const imap = path.join(dir, ".imap");
  if (isDir(probe, imap) && probe.access(imap, "rwx")) return true;
  return ["inbox", "mbox"].some((f) => {
    const p = path.join(dir, f);
    return probe.kind(p) === "file" && probe.access(p, "rw");
  });
}

function findMboxRootInHome(home: string | undefined, probe: FsProbe): string | undefined {
  if (home === undefined) return undefined;
  return MBOX_HOME_DIRS.map((d) => path.join(home, d)).find((d) => isMboxRoot(d, probe));
}

/** @returns the INBOX file Dovecot uses for an mbox root without `INBOX=`. */
export function defaultMboxInbox(root: string, user: string | undefined, probe: FsProbe = nodeFsProbe): string {
  if (user !== undefined && user !== "") {
    for (const spool of ["/var/mail", "/var/spool/mail"]) {
      const p = path.join(spool, user);
      if (probe.access(p, "rw")) return p;
    }
  }
  return path.join(root, "inbox");
}

function withMboxInbox(loc: MailLocation, opts: ResolveOptions, probe: FsProbe): MailLocation {
  if (loc.driver !== "mbox" || loc.inbox !== undefined) return loc;
  return { ...loc, inbox: defaultMboxInbox(loc.root, opts.user, probe) };
}

function detectInHome(loc: MailLocation, opts: ResolveOptions, probe: FsProbe): MailLocation | undefined {
  const home = opts.home;
  if (home === undefined) return undefined;
  const candidates: ReadonlyArray<readonly [MailDriver, string, string]> = [
    ["sdbox", "sdbox", "mailboxes"],
    ["mdbox", "mdbox", "storage"],
    ["maildir", "Maildir", "cur"],
  ];
  for (const [driver, dir, marker] of candidates) {
    const root = path.join(home, dir);
    if (probe.access(root, "rwx") && isDir(probe, path.join(root, marker))) return { ...loc, driver, root };
  }
  const mboxRoot = findMboxRootInHome(home, probe);
  return mboxRoot === undefined ? undefined : { ...loc, driver: "mbox", root: mboxRoot };
}

function detectAtPath(loc: MailLocation, opts: ResolveOptions, probe: FsProbe): MailLocation {
  const kind = probe.kind(loc.root);
  if (kind === "file") {
    // A file is an mbox INBOX; the folders' root must be found in the home.
    const root = findMboxRootInHome(opts.home, probe);
    if (root === undefined) {
      throw new InvalidArgumentError(`Ambiguous mail location setting, don't know what to do with it: ${loc.root} (try prefixing it with mbox: or maildir:)`);
    }
    return { ...loc, driver: "mbox", root, inbox: loc.inbox ?? loc.root };
  }
  const driver = detectFormatAt(loc.root, probe);
  if (driver === undefined) {
    throw new InvalidArgumentError(`Ambiguous mail location setting, don't know what to do with it: ${loc.root} (try prefixing it with mbox: or maildir:)`);
  }
  return { ...loc, driver };
}

/**
 * Resolves what Dovecot would open: parses `mailLocation` (or, when empty,
 * `env.MAIL`), expands `~`, autodetects a missing driver and fills in the
 * mbox INBOX.
 * @returns the location with its driver.
 * @throws InvalidArgumentError for a bad location string or an ambiguous path;
 *   MailstoreError with code NOT_FOUND when autodetection finds nothing.
 */
export function resolveMailLocation(mailLocation: string | undefined, opts: ResolveOptions = {}): ResolvedMailLocation {
  const probe = opts.probe ?? nodeFsProbe;
  const text = mailLocation !== undefined && mailLocation !== "" ? mailLocation : (opts.env?.MAIL ?? "");
  let loc = parseMailLocation(text);
  if (opts.home !== undefined) loc = expandLocationHome(loc, opts.home);

  // "sdbox:" with nothing after it would be the current directory: refused, not guessed.
  if (loc.driver !== undefined && loc.root === "") throw new InvalidArgumentError(`mail location "${text}" names no directory`);
  let autodetected = false;
  if (loc.driver === undefined) {
    autodetected = true;
    let found: MailLocation | undefined;
    try {
      found = loc.root === "" ? detectInHome(loc, opts, probe) : detectAtPath(loc, opts, probe);
    } catch (err) {
      // Say where the setting came from: a login shell sets $MAIL (e.g. /var/mail/$USER) unasked.
      if (err instanceof InvalidArgumentError && text !== mailLocation) throw new InvalidArgumentError(`${err.message}; the location came from $MAIL=${text}`);
      throw err;
    }
    if (found === undefined) {
      throw new MailstoreError("NOT_FOUND", `Mail storage autodetection failed with home=${opts.home ?? "(not set)"}`);
    }
    loc = found;
  }
  const resolved = withMboxInbox(loc, opts, probe);
  return { ...resolved, driver: resolved.driver as MailDriver, autodetected };
}
