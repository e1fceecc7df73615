import * as fs from "node:fs";
import { readLog } from "../../src/index.js";
import { decodeLogHeader } from "../../src/log/header.js";
import { LogChainError } from "../../src/shared/errors.js";

/** file_seq and prev_file_seq of a log file, or undefined when it does not exist. */
export function logHeader(file: string): { fileSeq: number; prevFileSeq: number } | undefined {
  if (!fs.existsSync(file)) return undefined;
  const h = decodeLogHeader(fs.readFileSync(file), file);
  return { fileSeq: h.fileSeq, prevFileSeq: h.prevFileSeq };
}

/**
 * Whether the log `prefix`.log was recreated or reset since its file_seq
 * was `before`: the same file_seq, or one chained rotation (.log continues
 * .log.2, which is the file we started with), is fine.
 * @returns what is wrong, or undefined.
 */
export function logRecreation(prefix: string, before: number): string | undefined {
  const head = logHeader(prefix + ".log");
  if (!head) return `${prefix}.log is gone`;
  if (head.fileSeq === before) return undefined;
  if (head.fileSeq !== before + 1) return `${prefix}.log file_seq jumped from ${before} to ${head.fileSeq} (recreated or rotated more than once)`;
  if (head.prevFileSeq !== before) return `${prefix}.log file_seq ${head.fileSeq} does not continue ${before}: recreated, not rotated`;
  if (logHeader(prefix + ".log.2")?.fileSeq !== before) return `${prefix}.log.2 is not the file we started with`;
  try {
    readLog(prefix);
  } catch (err) {
    if (err instanceof LogChainError) return err.message;
    throw err;
  }
  return undefined;
}
