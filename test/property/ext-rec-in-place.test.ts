/**
 * A replay from a reusing scan applies EXT_REC_UPDATE entries in place from
 * the log's bytes; a plain scan decodes them into objects first. A bad
 * entry gets the same error either way (issue #11). What the fold sets is
 * checked against a per-entry model in ext-rec-model.test.ts: comparing
 * the two scans' states compared the fold with itself (the objects are
 * packed, then folded in place too).
 */
import { describe, expect, it } from "vitest";
import { encodeTransaction } from "../../src/log/encode-file.js";
import { encodeLogHeader } from "../../src/log/header.js";
import { EXT_ID_BY_NAME, type LogRecord } from "../../src/log/types.js";
import type { IndexMapState } from "../../src/projections/state.js";
import { LogCorruptedError } from "../../src/shared/errors.js";
import { replayScan } from "../helpers/replay-scan.js";

const header = { indexId: 0x65000000, fileSeq: 1, prevFileSeq: 0, prevFileOffset: 0, createStamp: 0x65000000, initialModseq: 1n };
const int = { external: false, sync: false };

/** An outcome in comparable form: the error's class, message and place, or the state. */
function outcome(result: IndexMapState | LogCorruptedError): unknown {
  return result instanceof LogCorruptedError ? { error: result.constructor.name, message: result.message, details: { ...result } } : result;
}

describe("EXT_REC_UPDATE applied in place (reusing scan) and from decoded objects", () => {
  it.each([
    ["uid 0", [{ uid: 0, data: Uint8Array.of(1, 2, 3, 4) }], 4, /ext-rec-update: uid 0/],
    ["a uid past next_uid", [{ uid: 2, data: Uint8Array.of(1, 2, 3, 4) }, { uid: 9, data: Uint8Array.of(5, 6, 7, 8) }], 4, /invalid uid=9/],
    ["a payload its entries do not divide", [{ uid: 1, data: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8) }], 8, /payload size 12 is not a multiple of 8/],
  ])("rejects %s with the same error either way", (_, updates, recordSize, message) => {
    const intro: LogRecord = { type: "ext-intro", ...int, intros: [{ extId: EXT_ID_BY_NAME, resetId: 0, hdrSize: 0, recordSize: 4, recordAlign: 1, flags: 0, name: "x" }] };
    const bytes = Buffer.concat([
      encodeLogHeader(header),
      encodeTransaction([{ type: "append", ...int, messages: [1, 2, 3].map((uid) => ({ uid, flags: 0 })) }]),
      encodeTransaction([intro, { type: "ext-rec", ...int, recordSize, updates }]),
    ]);
    const inPlace = replayScan(bytes, true);
    expect(inPlace).toBeInstanceOf(LogCorruptedError);
    expect((inPlace as Error).message).toMatch(message);
    expect(outcome(inPlace)).toEqual(outcome(replayScan(bytes, false)));
  });
});
