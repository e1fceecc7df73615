import { createRequire } from "node:module";

// msgpackr is loaded on first use: only export/import of bundles needs it.
const require = createRequire(import.meta.url);
let packr: import("msgpackr").Packr | undefined;
/** One Packr for both ways; bigints beyond 64 bits (a running modseq can be any u64) keep their value. */
const msgpack = (): import("msgpackr").Packr =>
  (packr ??= new (require("msgpackr") as typeof import("msgpackr")).Packr({ useBigIntExtension: true }));
import { InvalidArgumentError } from "../shared/errors.js";
import type { LogFileHeader, LogPosition, LogRecord } from "../log/types.js";

/**
 * An event bundle: a mailbox's log transactions as typed records, portable
 * between machines and replayable into a fresh log (`import-events`). When
 * the log does not start from an empty state (older files were rotated away)
 * the bundle carries the dovecot.index checkpoint the transactions continue.
 */
export interface EventBundle {
  format: "mailstore-events";
  version: 1;
  /** Where the events came from (informational). */
  source: string;
  /** Header of the first log file the events were read from. */
  firstHeader: LogFileHeader;
  /** dovecot.index bytes the first transaction continues, when the log does not start empty. */
  checkpoint?: Uint8Array;
  /** The running modseq before the first transaction. */
  startModseq: bigint;
  transactions: BundleTransaction[];
}

export interface BundleTransaction {
  /** Position in the source log. */
  position: LogPosition;
  /** Running modseq after the transaction in the source log. */
  modseq: bigint;
  /** Whether the transaction started with a BOUNDARY record. */
  framed: boolean;
  records: LogRecord[];
}

export type BundleEncoding = "msgpack" | "json";

/** Encodes a bundle; msgpack keeps bytes and bigints natively, JSON tags them. */
export function encodeBundle(bundle: EventBundle, encoding: BundleEncoding): Uint8Array {
  if (encoding === "msgpack") return msgpack().pack(bundle);
  return Buffer.from(JSON.stringify(bundle, jsonReplacer, 1) + "\n");
}

/**
 * Decodes either encoding (JSON starts with `{`). Throws InvalidArgumentError
 * naming `path` when the bytes are not a bundle of a supported version.
 */
export function decodeBundle(bytes: Uint8Array, path: string): EventBundle {
  let value: unknown;
  try {
    value = bytes[0] === 0x7b ? JSON.parse(Buffer.from(bytes).toString("utf8"), jsonReviver) : msgpack().unpack(bytes);
  } catch (err) {
    throw new InvalidArgumentError(`not an event bundle: ${(err as Error).message}`, { path, offset: 0 });
  }
  const bundle = value as Partial<EventBundle>;
  if (bundle?.format !== "mailstore-events" || bundle.version !== 1 || !Array.isArray(bundle.transactions)) {
    throw new InvalidArgumentError("not a mailstore-events version 1 bundle", { path, offset: 0 });
  }
  return normalize(bundle as EventBundle);
}

/** msgpack gives Buffers for bin data; the rest of the engine compares plain Uint8Arrays. */
function normalize<T>(value: T): T {
  if (value instanceof Uint8Array) return new Uint8Array(value) as T;
  if (Array.isArray(value)) return value.map(normalize) as T;
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = normalize(v);
    return out as T;
  }
  return value;
}

function jsonReplacer(this: unknown, key: string, value: unknown): unknown {
  if (typeof value === "bigint") return { $bigint: value.toString() };
  // JSON.stringify has already turned Buffers into {type, data}; look at the raw holder value.
  const raw = (this as Record<string, unknown>)[key];
  if (raw instanceof Uint8Array) return { $hex: Buffer.from(raw).toString("hex") };
  return value;
}

function jsonReviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === "object") {
    const v = value as Record<string, unknown>;
    if (typeof v.$bigint === "string" && Object.keys(v).length === 1) return BigInt(v.$bigint);
    if (typeof v.$hex === "string" && Object.keys(v).length === 1) return new Uint8Array(Buffer.from(v.$hex, "hex"));
  }
  return value;
}
