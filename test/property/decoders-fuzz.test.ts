/**
 * Fuzz: readers of files that other programs write — dovecot.index (and
 * dovecot.map.index, the same format), mbox files, dovecot-uidlist — given
 * mutated or truncated bytes either read them or throw a MailstoreError with
 * the file's name, in bounded time; never a RangeError/TypeError, a hang or
 * a huge allocation. (Transaction logs: test/interop/log.test.ts; dbox files:
 * test/unit/drivers/dbox/file-format.test.ts.)
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MailstoreError } from "../../src/shared/errors.js";
import { MailFlag } from "../../src/log/types.js";
import { parseUidlist } from "../../src/drivers/maildir/uidlist.js";
import { parseMbox } from "../../src/drivers/mbox/scan.js";
import { replay } from "../../src/projections/apply.js";
import { decodeIndexFile, encodeIndexFile } from "../../src/projections/index-file.js";
import { emptyIndexMap } from "../../src/projections/state.js";
import { enableModseq, HDR, LogBuilder, R } from "../unit/projections/log-builder.js";
import { BYTE_VALUES, mutate, U32_VALUES, type Mutation } from "../../campaign/fuzz/mutate.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 400);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);

/** A dovecot.index with extension headers, records with cache offsets, keywords and modseqs. */
function indexBytes(): Uint8Array {
  const b = new LogBuilder();
  const state = replay(
    [
      b.tx(R.intro({ name: "dbox-hdr", hdrSize: 24 }), R.extHdr(0, new Array(24).fill(0xab)), R.headerU32(HDR.uidValidity, 1234)),
      b.tx(...enableModseq(b.modseq)),
      b.tx(R.intro({ name: "cache", recordSize: 4, recordAlign: 4 }), R.extReset(99)),
      b.tx(R.append([[1, MailFlag.SEEN], 2, [3, MailFlag.DELETED], 4, 5])),
      b.tx(R.keyword("add", "$Label1", [[2, 4]]), R.keyword("add", "work", [[5, 5]])),
    ],
    emptyIndexMap({ indexId: 0x65000000 }),
  );
  return encodeIndexFile(state);
}

const MBOX = Buffer.from(
  "From MAILER-DAEMON Thu Nov 29 22:33:52 2001\nX-IMAPbase: 1234 4 $Label1 work\nX-UID: 1\nStatus: RO\nX-Keywords: $Label1                \nContent-Length: 6\n\nhello\n\n" +
    "From a@b Thu Nov 29 22:33:53 2001\nX-UID: 2\nX-Status: F\n\n>From quoted\nFrom inside the body\n\n" +
    "From c@d Thu Nov 29 22:33:54 2001\nSubject: no metadata\n\nbody\n",
  "latin1",
);

const UIDLIST = Buffer.from(
  "3 V1234 N4 G0123456789abcdef0123456789abcdef\n" +
    "1 :1700000000.M1P1.host,S=10,W=11\n" +
    "2 G00112233445566778899aabbccddeeff :1700000001.M2P1.host,S=20,W=22\n" +
    "3 :1700000002.M3P1.host\n",
  "latin1",
);

/** Byte edits (campaign/fuzz/mutate.ts, shared with the fuzz campaign): overwrite, insert, delete, truncate, with boundary-ish values. */
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.constantFrom(...BYTE_VALUES) }),
  fc.record({ kind: fc.constant("u32" as const), at: fc.nat(), value: fc.constantFrom(...U32_VALUES) }),
  fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 16 }) }),
);

/** Runs `read`; only a MailstoreError naming `file` may come out, quickly. */
function expectTypedOnly(read: () => unknown, file: string): void {
  const t0 = performance.now();
  try {
    read();
  } catch (err) {
    if (!(err instanceof MailstoreError)) throw err;
    expect(`${err.message} ${JSON.stringify(err)}`).toContain(file);
  }
  expect(performance.now() - t0).toBeLessThan(1000);
}

describe("fuzzed readers give typed errors only", () => {
  const cases: Array<[string, Uint8Array, (bytes: Uint8Array, file: string) => unknown]> = [
    ["dovecot.index", indexBytes(), (bytes, file) => decodeIndexFile(bytes, file)],
    ["mbox", MBOX, (bytes, file) => parseMbox(bytes, { path: file })],
    ["dovecot-uidlist", UIDLIST, (bytes, file) => parseUidlist(bytes, file)],
  ];
  for (const [name, original, read] of cases) {
    it(`${name}: the unmutated file reads`, () => {
      expect(() => read(original, `/fuzz/${name}`)).not.toThrow();
    });
    it(`${name}: mutated copies read or fail with a MailstoreError naming the file`, () => {
      fc.assert(
        fc.property(fc.array(mutation, { minLength: 1, maxLength: 6 }), (edits) => {
          expectTypedOnly(() => read(mutate(original, edits), `/fuzz/${name}`), `/fuzz/${name}`);
        }),
        { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) },
      );
    });
  }
});
