/**
 * Every reader of a file another program may write, by target name, and how
 * one run of a reader on some bytes is classified.
 */
import * as path from "node:path";
import { decodeDboxFile, decodeSdboxFile } from "../../src/drivers/dbox/file-format.js";
import { parseMaildirKeywords } from "../../src/drivers/maildir/keywords-file.js";
import { parseUidlist } from "../../src/drivers/maildir/uidlist.js";
import { parseMbox } from "../../src/drivers/mbox/scan.js";
import { parseSubscriptions } from "../../src/drivers/subscriptions-file.js";
import { decodeBundle } from "../../src/forensics/bundle.js";
import { parseLogBytes } from "../../src/log/file.js";
import { decodeIndexFile } from "../../src/projections/index-file.js";
import { mapEntries, mapHeader } from "../../src/projections/mdbox-map-view.js";
import { MailstoreError } from "../../src/shared/errors.js";

export const FUZZ_TARGET_NAMES = ["log", "index", "map-index", "dbox", "uidlist", "keywords", "mbox", "subscriptions", "bundle"] as const;
export type FuzzTarget = (typeof FUZZ_TARGET_NAMES)[number];

/** A reader: bytes of the file at `file` (its name picks the variant, e.g. u.N or m.N), in a store of format `format`. */
type Reader = (bytes: Uint8Array, file: string, format: string) => unknown;

export const READERS: Record<FuzzTarget, Reader> = {
  log: (bytes, file) => parseLogBytes(bytes, file),
  index: (bytes, file) => decodeIndexFile(bytes, file),
  // The map is read as the mdbox driver reads it: the index, then its records and header.
  "map-index": (bytes, file) => {
    const state = decodeIndexFile(bytes, file);
    return [mapEntries(state), mapHeader(state)];
  },
  dbox: (bytes, file) => (path.basename(file).startsWith("u.") ? decodeSdboxFile(bytes, { path: file }) : decodeDboxFile(bytes, { path: file })),
  uidlist: (bytes, file) => parseUidlist(bytes, file),
  // The Maildir driver reads dovecot-keywords as latin1 text (byte for byte).
  keywords: (bytes) => parseMaildirKeywords(Buffer.from(bytes).toString("latin1")),
  mbox: (bytes, file) => parseMbox(bytes, { path: file }),
  subscriptions: (bytes, file, format) => parseSubscriptions(bytes, { separator: format === "maildir" ? "." : "/", utf8: false }, file),
  bundle: (bytes, file) => decodeBundle(bytes, file),
};

/**
 * ok: read; typed: a MailstoreError; untyped: anything else thrown (a bug:
 * readers of outside files must fail typed); slow: took over SLOW_MS in
 * process (a hang candidate); hang, crash: from the subprocess sample; damage:
 * the engine, working on a store with the broken file, changed another mailbox.
 */
export type Outcome = "ok" | "typed" | "untyped" | "slow" | "hang" | "crash" | "damage";
export const FAILING_OUTCOMES: ReadonlySet<Outcome> = new Set(["untyped", "slow", "hang", "crash", "damage"]);

/** An in-process read slower than this counts as "slow". */
export const SLOW_MS = 1000;

export interface Classified {
  readonly outcome: Outcome;
  /** The error's class and message, for typed and untyped outcomes. */
  readonly detail?: string;
  readonly ms: number;
}

/** Classifies what `run` does. Only MailstoreError counts as typed. */
export async function classify(run: () => unknown): Promise<Classified> {
  const t0 = performance.now();
  let outcome: Outcome = "ok";
  let detail: string | undefined;
  try {
    await run();
  } catch (err) {
    outcome = err instanceof MailstoreError ? "typed" : "untyped";
    detail = err instanceof Error ? `${err.name}${err instanceof MailstoreError ? ` ${err.code}` : ""}: ${err.message.slice(0, 300)}${outcome === "untyped" ? `\n${err.stack ?? ""}` : ""}` : String(err);
  }
  const ms = performance.now() - t0;
  if (ms > SLOW_MS && outcome !== "untyped") return { outcome: "slow", detail: `${Math.round(ms)} ms${detail ? `; ${detail}` : ""}`, ms };
  return { outcome, ms, ...(detail !== undefined ? { detail } : {}) };
}
