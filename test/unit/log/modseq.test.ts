import { expect, it } from "vitest";
import { nextModseq } from "../../../src/log/modseq.js";
import type { LogFileHeader, LogRecord } from "../../../src/log/types.js";

const header = { majorVersion: 1, minorVersion: 3 } as LogFileHeader;
const append: LogRecord = { type: "append", external: true, sync: false, messages: [{ uid: 1, flags: 0 }] };

it("counts in 64 bits as Dovecot's uint64_t does: past the largest value it wraps", () => {
  expect(nextModseq(41n, append, header)).toBe(42n);
  expect(nextModseq(0xfffffffffffffffen, append, header)).toBe(0xffffffffffffffffn);
  expect(nextModseq(0xffffffffffffffffn, append, header)).toBe(0n);
  const update: LogRecord = { type: "modseq-update", external: false, sync: false, updates: [{ uid: 0, modseq: 0xfffffffffffffff9n }] };
  expect(nextModseq(7n, update, header)).toBe(0xfffffffffffffff9n);
});
