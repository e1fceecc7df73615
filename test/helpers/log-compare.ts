import { expect } from "vitest";
import type { ParsedLogFile } from "../../src/log/file.js";
import { logDumpJson } from "../../src/cli/log-dump-format.js";
import type { LogDump } from "./doveadm-dump.js";

interface OurRecord { offset: number; type: string; external: boolean; size: number; modseq: number }

/**
 * Checks our decode of a log against `doveadm dump -t log`: the same records
 * at the same offsets with the same type names, external bits and sizes, and
 * our running modseq equal to the one doveadm prints whenever it prints one
 * (it does so only for records that move the modseq; elsewhere ours must not
 * move).
 */
export function expectSameAsDoveadm(ours: ParsedLogFile, theirs: LogDump): void {
  const records = (logDumpJson(ours) as { records: OurRecord[] }).records;
  expect(records.map((r) => [r.offset, r.type, r.external, r.size])).toEqual(
    theirs.records.map((r) => [r.offset, r.type, r.external, r.size]),
  );
  let previous = Number(ours.header.initialModseq);
  records.forEach((r, i) => {
    const printed = theirs.records[i].modseq;
    if (printed !== undefined) expect({ offset: r.offset, modseq: r.modseq }).toEqual({ offset: r.offset, modseq: Number(printed) });
    else expect({ offset: r.offset, modseq: r.modseq }).toEqual({ offset: r.offset, modseq: previous });
    previous = r.modseq;
  });
}
